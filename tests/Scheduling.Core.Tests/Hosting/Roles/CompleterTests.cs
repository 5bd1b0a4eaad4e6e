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

    [Fact]
    public async Task A_batch_the_store_refuses_for_one_value_is_split_the_good_acks_written_and_the_bad_one_stored_escaped()
    {
        var queue = $"poison-{Guid.NewGuid():N}";
        using var counts = new MetricCounts(queue);
        // As Npgsql does with a lone surrogate: the whole batch fails to encode, every time it holds the bad text.
        var store = new FakeStore
        {
            OnAcknowledge = acks => acks.Any(a => a.Error?.Contains('\uD83D', StringComparison.Ordinal) == true)
                ? throw new System.Text.EncoderFallbackException("Unable to translate Unicode character \\uD83D")
                : acks.Select(a => new AckResult(a.Lease.JobId, true, a.Kind == JobAckKind.Failed ? JobState.Dead : JobState.Succeeded)).ToArray(),
        };
        var completer = new AckWriter(store, new SchedulingOptions { AckFlushInterval = TimeSpan.FromMilliseconds(1), AckBatchSize = 50 }, TimeProvider.System, NullLogger.Instance);
        var run = completer.RunAsync(CancellationToken.None);

        var jobs = Enumerable.Range(1, 40).Select(i => FakeStore.Job(i, queue)).ToArray();
        foreach (var job in jobs)
            completer.Enqueue(new PendingAck(job.Id == 17 ? JobAck.Failure(job.Lease, "bad input \uD83D here", retryable: false) : JobAck.Success(job.Lease), job));
        completer.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(30));

        var written = store.Acknowledged.Where(b => !b.Any(a => a.Error?.Contains('\uD83D', StringComparison.Ordinal) == true)).SelectMany(b => b).ToArray();
        Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), written.Select(a => a.Lease.JobId).Order());
        var poison = Assert.Single(written, a => a.Lease.JobId == 17);
        Assert.Equal(JobAckKind.Failed, poison.Kind);
        Assert.Contains("bad input \\ud83d here", poison.Error, StringComparison.Ordinal);
        Assert.Equal(39, counts["succeeded"]);
        Assert.Equal(1, counts["dead"]);
        Assert.Null(completer.Failure);
    }

    [Fact]
    public async Task An_ack_of_a_row_locked_elsewhere_is_retried_apart_while_the_others_are_written()
    {
        var queue = $"locked-{Guid.NewGuid():N}";
        using var counts = new MetricCounts(queue);
        using var unlocked = new ManualResetEventSlim();
        var store = new FakeStore
        {
            OnAcknowledge = acks => acks.Any(a => a.Lease.JobId == 3) && !unlocked.IsSet
                ? throw new FakeDbException("55P03", "canceling statement due to lock timeout")
                : acks.Select(a => new AckResult(a.Lease.JobId, true, JobState.Succeeded)).ToArray(),
        };
        var completer = new AckWriter(store, new SchedulingOptions { AckFlushInterval = TimeSpan.FromMilliseconds(1), AckBatchSize = 50 }, TimeProvider.System, NullLogger.Instance);
        var run = completer.RunAsync(CancellationToken.None);
        var jobs = Enumerable.Range(1, 8).Select(i => FakeStore.Job(i, queue)).ToArray();

        foreach (var job in jobs) completer.Enqueue(new PendingAck(JobAck.Success(job.Lease), job));
        await Eventually.HoldsAsync(() => counts["succeeded"] == 7, "the seven acks without the locked row were written");
        Assert.False(run.IsCompleted);
        unlocked.Set(); // the other transaction commits
        completer.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(8, counts["succeeded"]);
    }

    [Fact]
    public async Task Acknowledgements_queued_past_the_bounded_room_are_never_dropped()
    {
        var queue = $"room-{Guid.NewGuid():N}";
        using var counts = new MetricCounts(queue);
        using var open = new ManualResetEventSlim();
        var store = new FakeStore
        {
            OnAcknowledge = acks =>
            {
                open.Wait(TimeSpan.FromSeconds(30));
                return acks.Select(a => new AckResult(a.Lease.JobId, true, JobState.Available)).ToArray();
            },
        };
        var options = new SchedulingOptions { AckFlushInterval = TimeSpan.FromMilliseconds(1), AckBatchSize = 10 };
        var completer = new AckWriter(store, options, TimeProvider.System, NullLogger.Instance);
        var run = completer.RunAsync(CancellationToken.None);

        // Many more releases than the room for finishing jobs, queued while the store is stuck, then the writer is completed.
        var releases = AckWriter.Capacity(options) * 3;
        for (var i = 1; i <= releases; i++)
        {
            var job = FakeStore.Job(i, queue);
            completer.Enqueue(new PendingAck(new JobAck(job.Lease, JobAckKind.Released), job));
        }

        completer.Complete();
        open.Set();
        await run.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(releases, store.Acknowledged.SelectMany(b => b).Select(a => a.Lease.JobId).Distinct().Count());
    }

    [Fact]
    public async Task Releases_written_straight_to_a_store_that_fails_are_left_to_the_completer_and_written()
    {
        var queue = $"now-{Guid.NewGuid():N}";
        var calls = 0;
        var store = new FakeStore
        {
            OnAcknowledge = acks => Interlocked.Increment(ref calls) == 1
                ? throw new TimeoutException("the database went away")
                : acks.Select(a => new AckResult(a.Lease.JobId, true, JobState.Available)).ToArray(),
        };
        var completer = new AckWriter(store, new SchedulingOptions { AckFlushInterval = TimeSpan.FromMilliseconds(1) }, TimeProvider.System, NullLogger.Instance);
        var run = completer.RunAsync(CancellationToken.None);
        var jobs = Enumerable.Range(1, 5).Select(i => FakeStore.Job(i, queue)).ToArray();

        await completer.WriteNowAsync(jobs.Select(j => new PendingAck(new JobAck(j.Lease, JobAckKind.Released), j)).ToArray());
        completer.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(2, store.Acknowledged.Count); // the straight write, then the completer's
        Assert.Equal([1L, 2, 3, 4, 5], store.Acknowledged[1].Select(a => a.Lease.JobId).Order());
    }

    private sealed class FakeDbException(string sqlState, string message) : System.Data.Common.DbException(message)
    {
        public override string SqlState => sqlState;
    }
}
