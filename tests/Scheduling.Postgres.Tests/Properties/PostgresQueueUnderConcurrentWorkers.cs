using System.Collections.Concurrent;
using FsCheck;
using FsCheck.Fluent;
using Npgsql;
using Xunit;

namespace Scheduling.Postgres.Tests.Properties;

/// <summary>
/// The concurrent variant of the model-based property: several workers and an enqueuer run random
/// scripts against one PostgreSQL queue at the same time, interleaved however the server and the
/// thread pool schedule them. No step is compared with a model (the interleaving is not known);
/// instead the invariants are checked as the scripts run and after a final drain: a job is never
/// held by two leases, every acknowledgement of a live lease applies, a job succeeds at most once,
/// an outright cancellation is final, every job ends terminal within its attempts, and no lease is
/// left behind. Leases are long, so none expires: every invariant is independent of timing.
/// </summary>
public sealed class PostgresQueueUnderConcurrentWorkers(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);
    private static readonly string[] Queues = ["q0", "q1"];

    [Fact]
    public void Interleaved_workers_keep_every_invariant()
    {
        var workerOp = Gen.Frequency(
            (4, from max in Gen.Choose(1, 4) from queue in Gen.Elements(Queues) select (Op)new Acquire(max, queue)),
            (4, Gen.Choose(1, 4).SelectMany(n => Gen.ListOf(Gen.Elements(JobAckKind.Succeeded, JobAckKind.Succeeded, JobAckKind.Failed, JobAckKind.Released), n))
                .Select(k => (Op)new Ack(k.ToArray()))),
            (2, from kinds in Gen.ListOf(Gen.Elements(JobAckKind.Succeeded, JobAckKind.Failed), 2) from queue in Gen.Elements(Queues) select (Op)new AckAndAcquire(kinds.ToArray(), 2, queue)),
            (1, Gen.Constant((Op)new Heartbeat())));
        var enqueuerOp = Gen.Frequency(
            (4, from n in Gen.Choose(1, 6) from queue in Gen.Elements(Queues) from withParent in Gen.Elements(false, false, true) select (Op)new Enqueue(n, queue, withParent)),
            (1, Gen.Choose(0, 100).Select(i => (Op)new Cancel(i))));
        var scripts =
            from workers in Gen.Choose(2, 4)
            from workerScripts in Gen.ListOf(Gen.ListOf(workerOp, 12).Select(s => s.ToArray()), workers)
            from enqueuer in Gen.ListOf(enqueuerOp, 10)
            select new Scripts(enqueuer.ToArray(), workerScripts.ToArray());
        var property = Prop.ForAll(Arb.From(scripts), s => Task.Run(() => RunAsync(s)).GetAwaiter().GetResult());
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(25), property);
    }

    private async Task<bool> RunAsync(Scripts scripts)
    {
        var rules = new JobQueueOptions { Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero } };
        var queue = await database.NewQueueAsync(rules);
        var state = new Shared();
        // A few jobs up front, so workers have something to take from the first step.
        state.Created(await queue.EnqueueManyAsync(Enumerable.Range(0, 8).Select(i => new JobRequest("k") { Queue = Queues[i % 2], MaxAttempts = 3 }).ToArray()));

        var workers = scripts.Workers.Select((script, i) => new Worker($"w{i}", queue, state)).ToArray();
        var running = workers.Select((w, i) => Task.Run(() => w.RunAsync(scripts.Workers[i])))
            .Append(Task.Run(() => RunEnqueuerAsync(queue, state, scripts.Enqueuer))).ToArray();
        // A reader folds the maintained counts while the scripts write (as the gauges and the dashboard do).
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            var reads = 0;
            while (!stop.IsCancellationRequested || reads == 0)
            {
                await queue.GetQueueStatsAsync();
                await queue.GetActivityAsync(TimeSpan.FromHours(1));
                reads++;
            }
        });
        await Task.WhenAll(running);
        await stop.CancelAsync();
        await reader;
        var (maintained, counted) = await PostgresDatabaseFixture.MaintainedCountsAsync(database.DataSource, queue.Schema);
        Assert.Equal(counted, maintained);

        // Drain: finish what is held, then take and finish everything left (children are released as their parents finish).
        foreach (var worker in workers) await worker.FinishHeldAsync();
        var drainer = new Worker("drain", queue, state);
        for (var round = 0; round < 1000 && await ActiveCountAsync(queue) > 0; round++)
        {
            foreach (var name in Queues) await drainer.RunAsync([new Acquire(100, name)]);
            await drainer.FinishHeldAsync();
        }

        await CheckFinalAsync(queue, state);
        Assert.Empty(await queue.GetQueueStatsAsync()); // every job finished: no queue has active ones
        (maintained, counted) = await PostgresDatabaseFixture.MaintainedCountsAsync(database.DataSource, queue.Schema);
        Assert.Equal(counted, maintained);
        return true;
    }

    private static async Task RunEnqueuerAsync(PostgresJobQueue queue, Shared state, Op[] script)
    {
        foreach (var op in script)
        {
            switch (op)
            {
                case Enqueue e:
                    var parent = e.WithParent ? state.AnyJob(e.N) : null;
                    state.Created(await queue.EnqueueManyAsync(Enumerable.Range(0, e.N).Select(_ => new JobRequest("k")
                    {
                        Queue = e.Queue, MaxAttempts = 3, DependsOn = parent is { } p ? [JobDependency.OnJob(p)] : [],
                        OnParentFailure = ParentFailurePolicy.RunAnyway,
                    }).ToArray()));
                    break;
                case Cancel c when state.AnyJob(c.Job) is { } id:
                    if (await queue.CancelAsync(id) == CancelOutcome.Cancelled) state.CancelledOutright[id] = true;
                    break;
            }
        }
    }

    private async Task<long> ActiveCountAsync(PostgresJobQueue queue) =>
        await database.CountJobsAsync(queue.Schema, "state IN ('waiting', 'available', 'running')");

    private async Task CheckFinalAsync(PostgresJobQueue queue, Shared state)
    {
        Assert.True(state.Violations.IsEmpty, string.Join(Environment.NewLine, state.Violations));
        await using var command = database.DataSource.CreateCommand(
            $"SELECT id, state, attempt, max_attempts, lease_token IS NOT NULL OR locked_by IS NOT NULL FROM \"{queue.Schema}\".jobs");
        await using var reader = await command.ExecuteReaderAsync();
        var rows = 0;
        while (await reader.ReadAsync())
        {
            rows++;
            var (id, jobState, attempt, maxAttempts, leased) = (reader.GetInt64(0), reader.GetString(1), reader.GetInt32(2), reader.GetInt32(3), reader.GetBoolean(4));
            Assert.True(jobState is "succeeded" or "dead" or "cancelled", $"job {id} ended {jobState}");
            Assert.False(leased, $"job {id} kept a lease");
            Assert.True(attempt <= maxAttempts, $"job {id} ran {attempt} attempts of {maxAttempts}");
            if (state.CancelledOutright.ContainsKey(id)) Assert.Equal("cancelled", jobState);
            if (jobState == "succeeded") Assert.Equal(1, state.Successes.GetValueOrDefault(id));
            Assert.True(state.Failures.GetValueOrDefault(id) <= attempt, $"job {id}: {state.Failures.GetValueOrDefault(id)} failures applied in {attempt} attempts");
        }

        Assert.Equal(state.JobCount, rows);
    }

    /// <summary>What the scripts share: the jobs created, who holds what, and what was applied.</summary>
    private sealed class Shared
    {
        private readonly List<long> _jobs = [];
        public ConcurrentDictionary<long, Guid> Held { get; } = new();
        public ConcurrentDictionary<long, int> Successes { get; } = new();
        public ConcurrentDictionary<long, int> Failures { get; } = new();
        public ConcurrentDictionary<long, bool> CancelledOutright { get; } = new();
        public ConcurrentQueue<string> Violations { get; } = new();

        public int JobCount { get { lock (_jobs) return _jobs.Count; } }

        public void Created(IReadOnlyList<EnqueueResult> results)
        {
            lock (_jobs) _jobs.AddRange(results.Where(r => r.Created).Select(r => r.JobId));
        }

        public long? AnyJob(int index)
        {
            lock (_jobs) return _jobs.Count == 0 ? null : _jobs[index % _jobs.Count];
        }
    }

    private sealed class Worker(string name, PostgresJobQueue queue, Shared state)
    {
        private readonly List<JobLease> _held = [];

        public async Task RunAsync(Op[] script)
        {
            foreach (var op in script)
            {
                switch (op)
                {
                    case Acquire a:
                        Took(await queue.AcquireAsync(new AcquireRequest(a.Queue, name, a.Max, Lease)));
                        break;
                    case Ack a:
                        var acks = Pick(a.Kinds);
                        if (acks.Length > 0) await AckedAsync(acks, await queue.AcknowledgeAsync(acks));
                        break;
                    case AckAndAcquire aa:
                        var both = await queue.AcknowledgeAndAcquireAsync(Pick(aa.Kinds), new AcquireRequest(aa.Queue, name, aa.Max, Lease));
                        await AckedAsync(both.Acknowledged.Count == 0 ? [] : _lastPicked, both.Acknowledged);
                        Took(both.Acquired);
                        break;
                    case Heartbeat:
                        // A row locked meanwhile (an enqueue naming it as a parent) is skipped, to be retried: fewer is allowed, others' never.
                        var mine = _held.Select(l => (l.JobId, l.Token)).ToHashSet();
                        foreach (var held in await queue.HeartbeatAsync(name, _held.ToArray(), Lease))
                            if (!mine.Contains((held.JobId, held.Token))) state.Violations.Enqueue($"{name}'s heartbeat extended job {held.JobId}, whose lease it does not hold");
                        break;
                }
            }
        }

        public async Task FinishHeldAsync()
        {
            if (_held.Count == 0) return;
            var acks = _held.Select(JobAck.Success).ToArray();
            _held.Clear();
            Relinquish(acks);
            await AckedAsync(acks, await queue.AcknowledgeAsync(acks));
        }

        private JobAck[] _lastPicked = [];

        /// <summary>Acknowledgements for the oldest held leases, one per kind (as many as are held).</summary>
        private JobAck[] Pick(JobAckKind[] kinds)
        {
            var count = Math.Min(kinds.Length, _held.Count);
            _lastPicked = _held.Take(count).Select((lease, i) => kinds[i] switch
            {
                JobAckKind.Succeeded => JobAck.Success(lease),
                JobAckKind.Failed => JobAck.Failure(lease, "failed"),
                _ => new JobAck(lease, JobAckKind.Released),
            }).ToArray();
            _held.RemoveRange(0, count);
            Relinquish(_lastPicked);
            return _lastPicked;
        }

        /// <summary>A lease is given up when its acknowledgement is sent: from then on another worker may rightly take the job.</summary>
        private void Relinquish(JobAck[] acks)
        {
            foreach (var ack in acks) state.Held.TryRemove(KeyValuePair.Create(ack.Lease.JobId, ack.Lease.Token));
        }

        private void Took(IReadOnlyList<AcquiredJob> jobs)
        {
            foreach (var job in jobs)
            {
                if (!state.Held.TryAdd(job.Id, job.Lease.Token)) state.Violations.Enqueue($"job {job.Id} was delivered to {name} while another lease held it");
                if (state.Successes.ContainsKey(job.Id)) state.Violations.Enqueue($"job {job.Id} was delivered to {name} after it succeeded");
                _held.Add(job.Lease);
            }
        }

        private async Task AckedAsync(JobAck[] acks, IReadOnlyList<AckResult> results)
        {
            for (var i = 0; i < acks.Length; i++)
            {
                var id = acks[i].Lease.JobId;
                // Nobody else acknowledges this lease and none expires: it must apply.
                if (!results[i].Applied)
                {
                    var job = await queue.GetJobAsync(id);
                    state.Violations.Enqueue($"{name}'s {acks[i].Kind} of job {id} on its live lease was not applied (batch of {acks.Length}: {string.Join(",", acks.Select(a => a.Lease.JobId + ":" + a.Kind))}); now {job?.State} attempt {job?.Attempt} by {job?.LockedBy} cancel {job?.CancellationRequested} errors {string.Join("|", job?.Errors.Select(e => e.Message) ?? [])}");
                }
                if (acks[i].Kind == JobAckKind.Succeeded && state.Successes.AddOrUpdate(id, 1, (_, n) => n + 1) > 1)
                    state.Violations.Enqueue($"job {id} succeeded twice");
                if (acks[i].Kind == JobAckKind.Failed) state.Failures.AddOrUpdate(id, 1, (_, n) => n + 1);
            }
        }
    }

    private sealed record Scripts(Op[] Enqueuer, Op[][] Workers)
    {
        public override string ToString() =>
            $"enqueuer [{string.Join("; ", Enqueuer.Select(o => o.ToString()))}], {string.Join(", ", Workers.Select((w, i) => $"w{i} [{string.Join("; ", w.Select(o => o.ToString()))}]"))}";
    }

    private abstract record Op;
    private sealed record Acquire(int Max, string Queue) : Op;
    private sealed record Ack(JobAckKind[] Kinds) : Op
    {
        public override string ToString() => $"Ack [{string.Join(",", Kinds)}]";
    }

    private sealed record AckAndAcquire(JobAckKind[] Kinds, int Max, string Queue) : Op
    {
        public override string ToString() => $"AckAndAcquire [{string.Join(",", Kinds)}] then {Max} from {Queue}";
    }

    private sealed record Heartbeat : Op;
    private sealed record Enqueue(int N, string Queue, bool WithParent) : Op;
    private sealed record Cancel(int Job) : Op;
}
