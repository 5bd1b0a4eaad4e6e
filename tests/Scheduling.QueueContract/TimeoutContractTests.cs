using Xunit;

namespace Scheduling.QueueContract;

/// <summary>A job's own attempt timeout is stored with it and handed to the worker that acquires it.</summary>
public abstract partial class JobQueueContractTests
{
    [Fact]
    public async Task A_jobs_own_timeout_comes_back_with_every_acquisition_and_a_bad_one_is_refused()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueAsync(new JobRequest("k") { Timeout = TimeSpan.FromMilliseconds(1500), Priority = 1 });
        await queue.EnqueueManyAsync([new JobRequest("k") { Timeout = TimeSpan.FromDays(7) }, new JobRequest("k")]); // the bulk path too

        var jobs = await queue.AcquireAsync(Take(10));

        Assert.Equal([TimeSpan.FromMilliseconds(1500), TimeSpan.FromDays(7), null], jobs.Select(j => j.Timeout));
        Assert.Equal(TimeSpan.FromMilliseconds(1500), (await queue.GetJobAsync(jobs[0].Id))!.Timeout);
        Assert.Null((await queue.GetJobAsync(jobs[2].Id))!.Timeout);
        await queue.FailAsync(jobs[0].Lease, "timed out");
        Time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(TimeSpan.FromMilliseconds(1500), Assert.Single(await queue.AcquireAsync(Take(10))).Timeout); // and again on a retry

        foreach (var bad in new[] { TimeSpan.Zero, TimeSpan.FromMilliseconds(-1), TimeSpan.FromDays(8), TimeSpan.FromTicks(15_000) })
        {
            var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.EnqueueAsync(new JobRequest("k") { Timeout = bad }).AsTask());
            Assert.Equal("request.Timeout", error.ParamName);
        }
    }
}
