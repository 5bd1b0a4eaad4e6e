using Microsoft.Extensions.Logging.Abstractions;
using Scheduling.Hosting;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Core.Tests.Hosting.Roles;

/// <summary>The completer (<see cref="AckWriter"/>) against a fake store.</summary>
public sealed class CompleterTests
{
    [Fact]
    public async Task A_batch_whose_write_fails_is_written_again_and_counted_once_by_what_the_store_applied()
    {
        var queue = $"completer-{Guid.NewGuid():N}";
        using var counts = new MetricCounts(queue);
        var calls = 0;
        var store = new FakeStore
        {
            OnAcknowledge = acks => Interlocked.Increment(ref calls) == 1
                ? throw new TimeoutException("the database went away")
                // The store decides: a failure of a job whose cancellation was requested ends cancelled.
                : acks.Select(a => new AckResult(a.Lease.JobId, true, a.Kind == JobAckKind.Failed ? JobState.Cancelled : JobState.Succeeded)).ToArray(),
        };
        var options = new SchedulingOptions { AckFlushInterval = TimeSpan.FromMilliseconds(1), AckBatchSize = 10 };
        var completer = new AckWriter(store, options, TimeProvider.System, NullLogger.Instance);
        var run = completer.RunAsync(CancellationToken.None);

        var jobs = Enumerable.Range(1, 3).Select(i => FakeStore.Job(i, queue)).ToArray();
        completer.Enqueue(new PendingAck(JobAck.Success(jobs[0].Lease), jobs[0]));
        completer.Enqueue(new PendingAck(JobAck.Success(jobs[1].Lease), jobs[1]));
        completer.Enqueue(new PendingAck(JobAck.Failure(jobs[2].Lease, "boom"), jobs[2]));
        completer.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(calls >= 2, $"the failed write was retried ({calls} calls)");
        Assert.Equal([1L, 2, 3], store.Acknowledged.SelectMany(b => b).Select(a => a.Lease.JobId).Distinct().Order());
        Assert.Equal(2, counts["succeeded"]);
        Assert.Equal(1, counts["failed"]);
        Assert.Equal(1, counts["cancelled"]);
        Assert.Equal(0, counts["retried"]); // the handler's own view (attempt 1 of 3, retryable) would have said retried
        Assert.Equal(0, counts["dead"]);
    }

    [Fact]
    public async Task A_stale_acknowledgement_counts_no_outcome()
    {
        var queue = $"stale-{Guid.NewGuid():N}";
        using var counts = new MetricCounts(queue);
        var store = new FakeStore { OnAcknowledge = acks => acks.Select(a => new AckResult(a.Lease.JobId, false, null)).ToArray() };
        var completer = new AckWriter(store, new SchedulingOptions { AckFlushInterval = TimeSpan.Zero }, TimeProvider.System, NullLogger.Instance);
        var job = FakeStore.Job(1, queue);

        await completer.AcknowledgeAsync(new PendingAck(JobAck.Success(job.Lease), job));

        Assert.Single(store.Acknowledged);
        Assert.Equal(0, counts["succeeded"]);
    }
}
