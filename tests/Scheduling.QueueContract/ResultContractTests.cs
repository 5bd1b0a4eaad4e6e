using Xunit;

namespace Scheduling.QueueContract;

/// <summary>Results: stored with a success only, read back with the job, and listed for a child by its parents.</summary>
public abstract partial class JobQueueContractTests
{
    [Fact]
    public async Task A_success_stores_its_result_a_failure_stores_none_and_a_child_lists_its_parents_with_theirs()
    {
        var queue = await CreateQueueAsync();
        var ids = await queue.EnqueueManyAsync(
        [
            new JobRequest("k") { LocalKey = "a", MaxAttempts = 2 },
            new JobRequest("k") { LocalKey = "b" },
            new JobRequest("k") { DependsOn = [JobDependency.OnRequest("a"), JobDependency.OnRequest("b")] },
            new JobRequest("k"),
        ]);

        var first = await queue.AcquireAsync(Take(10));
        var a = first.Single(j => j.Id == ids[0].JobId);
        var b = first.Single(j => j.Id == ids[1].JobId);
        await queue.AcknowledgeAsync([JobAck.Failure(a.Lease, "boom") with { ResultJson = """{"ignored":true}""" }, JobAck.Success(b.Lease) with { ResultJson = """{"rows":2}""" }]);
        Assert.Null((await queue.GetJobAsync(a.Id))!.ResultJson); // only a success stores what its handler set
        Time.Advance(TimeSpan.FromHours(1));
        var retried = Assert.Single(await queue.AcquireAsync(Take(10)), j => j.Id == a.Id);
        await queue.AcknowledgeAsync([JobAck.Success(retried.Lease) with { ResultJson = """{"rows":1}""" }]);

        var parents = await queue.ListJobsAsync(new JobListQuery { ParentsOf = ids[2].JobId });
        Assert.Equal([(ids[1].JobId, """{"rows":2}"""), (ids[0].JobId, """{"rows":1}""")], parents.Select(p => (p.Id, Compact(p.ResultJson))));
        Assert.Empty(await queue.ListJobsAsync(new JobListQuery { ParentsOf = ids[3].JobId }));
        Assert.Null((await queue.GetJobAsync(ids[3].JobId))!.ResultJson);
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task The_payload_version_travels_with_the_job()
    {
        var queue = await CreateQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k", new { a = 1 }) { PayloadVersion = 7 })).JobId;
        Assert.Equal(7, (await queue.GetJobAsync(id))!.PayloadVersion);
        Assert.Equal(7, Assert.Single(await queue.AcquireAsync(Take())).PayloadVersion);
        Assert.Equal(0, (await queue.GetJobAsync((await queue.EnqueueAsync(new JobRequest("k"))).JobId))!.PayloadVersion);
    }

    // PostgreSQL's jsonb prints with spaces; compare the JSON, not its spelling.
    private static string? Compact(string? json) => json is null ? null : System.Text.Json.JsonSerializer.Serialize(System.Text.Json.JsonDocument.Parse(json).RootElement);
}
