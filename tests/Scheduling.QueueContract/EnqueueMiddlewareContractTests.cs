using Xunit;

namespace Scheduling.QueueContract;

/// <summary>Enqueue middleware: in registration order around every enqueue call, able to change requests, short-circuit and refuse.</summary>
public abstract partial class JobQueueContractTests
{
    private Task<StoreUnderTest> CreateQueueWithAsync(params Func<EnqueueContext, Func<Task>, Task>[] middleware)
    {
        var rules = new JobQueueOptions { Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromSeconds(2), MaxDelay = TimeSpan.FromSeconds(60), Jitter = RetryJitter.None } };
        foreach (var m in middleware) rules.EnqueueMiddleware.Add(m);
        return CreateQueueAsync(rules);
    }

    [Fact]
    public async Task Enqueue_middleware_runs_in_registration_order_around_every_call_and_its_changes_are_what_is_written()
    {
        var order = new List<string>();
        var queue = await CreateQueueWithAsync(
            async (context, proceed) =>
            {
                order.Add($"outer:{context.Requests.Count}:{context.IsBatch}");
                context.Requests = context.Requests.Select(r => r with { PartitionKey = "tenant-7" }).ToArray(); // a tenant context stamped on every job
                await proceed();
                order.Add($"outer-after:{context.Results!.Count}");
            },
            async (context, proceed) =>
            {
                order.Add($"inner:{context.Requests[0].PartitionKey}");
                await proceed();
            });

        var one = await queue.EnqueueAsync(new JobRequest("k"));
        var many = await queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k")]);
        var batch = await queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("m")]) { OnComplete = new JobRequest("cb") });
        var added = await queue.AddToBatchAsync(batch.BatchId, [new JobRequest("m2")]);

        Assert.Equal(
            ["outer:1:False", "inner:tenant-7", "outer-after:1", "outer:2:False", "inner:tenant-7", "outer-after:2",
             "outer:2:True", "inner:tenant-7", "outer-after:2", "outer:1:False", "inner:tenant-7", "outer-after:1"], order);
        foreach (var id in new[] { one.JobId, many[1].JobId, batch.Jobs[0].JobId, batch.OnCompleteJobId!.Value, added[0].JobId })
            Assert.Equal("tenant-7", (await queue.GetJobAsync(id))!.PartitionKey);
        Assert.Equal(batch.BatchId, (await queue.GetJobAsync(added[0].JobId))!.BatchId);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Enqueue_middleware_can_short_circuit_with_results_or_refuse_by_throwing_and_then_nothing_is_written()
    {
        var existing = 0L;
        var queue = await CreateQueueWithAsync(async (context, proceed) =>
        {
            if (context.Requests.Any(r => r.Kind == "forbidden")) throw new UnauthorizedAccessException("not allowed to enqueue 'forbidden'");
            if (context.Requests.Any(r => r.Kind == "known")) { context.Results = context.Requests.Select(_ => new EnqueueResult(existing, false)).ToArray(); return; }
            if (context.Requests.Any(r => r.Kind == "drops")) context.Requests = [];
            if (context.Requests.Any(r => r.Kind == "skips")) return;
            await proceed();
        });
        existing = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;

        Assert.Equal(new EnqueueResult(existing, false), await queue.EnqueueAsync(new JobRequest("known")));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("forbidden")]).AsTask());
        Assert.Contains("one for one", (await Assert.ThrowsAsync<InvalidOperationException>(() => queue.EnqueueAsync(new JobRequest("drops")).AsTask())).Message, StringComparison.Ordinal);
        Assert.Contains("neither called proceed nor set", (await Assert.ThrowsAsync<InvalidOperationException>(() => queue.EnqueueAsync(new JobRequest("skips")).AsTask())).Message, StringComparison.Ordinal);
        Assert.Contains("cannot be short-circuited", (await Assert.ThrowsAsync<InvalidOperationException>(() => queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("skips")])).AsTask())).Message, StringComparison.Ordinal);

        Assert.Equal([existing], (await queue.ListJobsAsync(new JobListQuery())).Select(j => j.Id)); // only the first job was ever written
        // A request the middleware passes on is still validated by the queue, naming the property.
        Assert.Equal("request.Queue", (await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueAsync(new JobRequest("k") { Queue = "" }).AsTask())).ParamName);
        await AssertConsistentAsync(queue);
    }
}
