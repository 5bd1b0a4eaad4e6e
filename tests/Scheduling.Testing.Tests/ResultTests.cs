using Xunit;

namespace Scheduling.Testing.Tests;

public sealed record Extracted(int Rows);

public sealed class ResultTests
{
    [Fact]
    public async Task A_handler_sets_a_result_and_a_child_reads_its_parents_results_typed()
    {
        var seen = new List<(long, Extracted?)>();
        using var host = new TestHost(TestingMode.Manual, s => s
            .AddHandler<int>("extract", (ctx, _) =>
            {
                ctx.SetResult(new Extracted(ctx.Payload));
                return Task.CompletedTask;
            })
            .AddHandler<int>("load", async (ctx, ct) =>
            {
                foreach (var parent in await ctx.ParentResultsAsync(ct)) seen.Add((parent.JobId, parent.Value<Extracted>()));
            }));
        var ids = await host.Queue.EnqueueManyAsync(
        [
            new JobRequest("extract", 10) { LocalKey = "x" },
            new JobRequest("extract", 20) { LocalKey = "y" },
            new JobRequest("load") { DependsOn = [JobDependency.OnRequest("x"), JobDependency.OnRequest("y")] },
        ]);

        await host.Runner.RunPendingAsync();

        Assert.Equal([(ids[0].JobId, new Extracted(10)), (ids[1].JobId, new Extracted(20))], seen);
        Assert.Equal(new Extracted(10), new JobResult(ids[0].JobId, "extract", JobState.Succeeded, (await host.Queue.GetJobAsync(ids[0].JobId))!.ResultJson).Value<Extracted>());
    }

    [Fact]
    public async Task A_result_over_the_bound_fails_the_attempt_with_its_size_and_a_context_without_a_store_says_so()
    {
        using var host = new TestHost(TestingMode.Manual, s => s.AddHandler<int>("huge", (ctx, _) =>
        {
            ctx.SetResult(new string('x', JobOutput.MaxResultBytes));
            return Task.CompletedTask;
        }));
        var id = (await host.Queue.EnqueueAsync(new JobRequest("huge") { MaxAttempts = 1 })).JobId;

        await host.Runner.RunPendingAsync();

        var job = (await host.Queue.GetJobAsync(id))!;
        Assert.Equal(JobState.Dead, job.State);
        Assert.Contains("the limit is 65,536", Assert.Single(job.Errors).Message, StringComparison.Ordinal);
        Assert.Null(job.ResultJson);

        var detached = TestJobContext.Create(1);
        await Assert.ThrowsAsync<InvalidOperationException>(() => detached.ParentResultsAsync().AsTask());
    }
}
