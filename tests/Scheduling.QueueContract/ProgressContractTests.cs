using Xunit;

namespace Scheduling.QueueContract;

/// <summary>Progress: written with a heartbeat under a held lease only, read back with the job, validated.</summary>
public abstract partial class JobQueueContractTests
{
    [Fact]
    public async Task A_heartbeat_writes_the_progress_of_held_leases_only_and_the_job_shows_it()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k")]);
        var jobs = await queue.AcquireAsync(Take(2));
        var report = new JobProgress(0.4, "copying", """{"files":"12"}""");

        var held = await queue.HeartbeatAsync("w1", [jobs[0].Lease], Lease, [new JobProgressUpdate(jobs[0].Lease, report), new JobProgressUpdate(jobs[1].Lease with { Token = Guid.NewGuid() }, report)]);

        Assert.Single(held);
        var shown = (await queue.GetJobAsync(jobs[0].Id))!.Progress!;
        Assert.Equal((0.4, "copying", Start), (shown.Fraction, shown.Message, shown.ReportedAt));
        Assert.Equal("""{"files":"12"}""", Compact(shown.MetadataJson));
        Assert.Null((await queue.GetJobAsync(jobs[1].Id))!.Progress); // a stale lease writes nothing

        Time.Advance(TimeSpan.FromSeconds(5));
        await queue.HeartbeatAsync("w1", [jobs[0].Lease], Lease); // a heartbeat without reports keeps the last one
        Assert.Equal(Start, (await queue.GetJobAsync(jobs[0].Id))!.Progress!.ReportedAt);

        var bad = await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.HeartbeatAsync("w1", [jobs[0].Lease], Lease, [new JobProgressUpdate(jobs[0].Lease, new JobProgress(2, null, null))]).AsTask());
        Assert.Equal("progress[0].Progress.Fraction", bad.ParamName);
    }

    [Fact]
    public async Task The_last_report_rides_with_the_acknowledgement_when_it_applies()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k") { MaxAttempts = 3 }]);
        var jobs = await queue.AcquireAsync(Take(2));
        var done = new JobProgress(1, "done", null);

        await queue.AcknowledgeAsync([JobAck.Success(jobs[0].Lease) with { Progress = done }, JobAck.Failure(jobs[1].Lease, "boom") with { Progress = new JobProgress(0.3, "failed at 30%", null) }]);

        Assert.Equal((1.0, "done"), ((await queue.GetJobAsync(jobs[0].Id))!.Progress!.Fraction!.Value, (await queue.GetJobAsync(jobs[0].Id))!.Progress!.Message));
        Assert.Equal("failed at 30%", (await queue.GetJobAsync(jobs[1].Id))!.Progress!.Message);
        await queue.AcknowledgeAsync([JobAck.Success(jobs[0].Lease) with { Progress = new JobProgress(0, "stale", null) }]);
        Assert.Equal("done", (await queue.GetJobAsync(jobs[0].Id))!.Progress!.Message); // a stale acknowledgement writes nothing
        Assert.Equal("acks[0].Progress.Fraction", (await Assert.ThrowsAnyAsync<ArgumentException>(() => queue.AcknowledgeAsync([JobAck.Success(jobs[0].Lease) with { Progress = new JobProgress(-1, null, null) }]).AsTask())).ParamName);
    }
}
