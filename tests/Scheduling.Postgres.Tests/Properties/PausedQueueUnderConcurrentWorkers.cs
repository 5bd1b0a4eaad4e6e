using System.Collections.Concurrent;
using System.Diagnostics;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Scheduling.Postgres.Tests.Properties;

/// <summary>
/// Pausing under load: several workers claim from a queue and a neighbour concurrently while the
/// queue is paused at a random moment. The invariant does not depend on timing: a claim that began
/// after <see cref="IJobQueue.PauseQueueAsync"/> returned (by one monotonic clock in this process)
/// leases nothing of the paused queue; nothing is lost meanwhile; after resuming, every job ends
/// succeeded exactly once.
/// </summary>
public sealed class PausedQueueUnderConcurrentWorkers(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);

    private sealed record Case(int Workers, int JobsPerQueue, int PauseAfterClaims, int Batch);

    [Fact]
    public void A_claim_that_starts_after_the_pause_returned_leases_nothing_of_the_paused_queue()
    {
        var cases =
            from workers in Gen.Choose(2, 4)
            from jobs in Gen.Choose(30, 150)
            from pauseAfter in Gen.Choose(0, 8)
            from batch in Gen.Choose(1, 6)
            select new Case(workers, jobs, pauseAfter, batch);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(12), Prop.ForAll(Arb.From(cases), c => Task.Run(() => RunAsync(c)).GetAwaiter().GetResult()));
    }

    private async Task<bool> RunAsync(Case c)
    {
        var queue = await database.NewQueueAsync();
        var enqueued = await queue.EnqueueManyAsync(Enumerable.Range(0, c.JobsPerQueue * 2).Select(i => new JobRequest("k", i) { Queue = i % 2 == 0 ? "paused" : "other" }).ToArray());
        var ofPaused = enqueued.Where((_, i) => i % 2 == 0).Select(r => r.JobId).ToHashSet();
        var pausedAt = long.MaxValue;
        var claims = 0;
        var otherLeft = c.JobsPerQueue;
        var violations = new ConcurrentBag<string>();
        var succeeded = new ConcurrentDictionary<long, int>();

        async Task WorkAsync(string worker)
        {
            while (Volatile.Read(ref otherLeft) > 0)
            {
                var started = Stopwatch.GetTimestamp();
                var jobs = await queue.AcquireAsync(new AcquireRequest([new QueueShare("paused", 1), new QueueShare("other", 1)], worker, c.Batch, Lease));
                Interlocked.Increment(ref claims);
                foreach (var job in jobs.Where(j => j.Queue == "paused" && started > Volatile.Read(ref pausedAt)))
                    violations.Add($"job {job.Id} of the paused queue leased by a claim that began after the pause returned");
                foreach (var result in await queue.AcknowledgeAsync(jobs.Select(j => JobAck.Success(j.Lease)).ToArray()))
                    succeeded.AddOrUpdate(result.JobId, 1, (_, n) => n + 1);
                Interlocked.Add(ref otherLeft, -jobs.Count(j => j.Queue == "other"));
            }
        }

        var workers = Enumerable.Range(0, c.Workers).Select(i => Task.Run(() => WorkAsync($"w{i}"))).ToArray();
        while (Volatile.Read(ref claims) < c.PauseAfterClaims && workers.Any(w => !w.IsCompleted)) await Task.Yield();
        Assert.True(await queue.PauseQueueAsync("paused"));
        Volatile.Write(ref pausedAt, Stopwatch.GetTimestamp());
        await Task.WhenAll(workers);

        Assert.Empty(violations);
        var leftPaused = (await queue.ListJobsAsync(new JobListQuery { Queue = "paused", States = [JobState.Available], Limit = JobListQuery.MaxLimit })).Count;
        Assert.Equal(c.JobsPerQueue, leftPaused + succeeded.Keys.Count(ofPaused.Contains)); // none lost: each ran before the pause or waits
        Assert.True(await queue.ResumeQueueAsync("paused"));
        while (await queue.AcquireAsync(new AcquireRequest("paused", "drain", 50, Lease)) is { Count: > 0 } rest)
            foreach (var result in await queue.AcknowledgeAsync(rest.Select(j => JobAck.Success(j.Lease)).ToArray())) succeeded.AddOrUpdate(result.JobId, 1, (_, n) => n + 1);
        Assert.Equal(c.JobsPerQueue * 2, succeeded.Count);
        Assert.All(succeeded.Values, n => Assert.Equal(1, n));
        return true;
    }
}
