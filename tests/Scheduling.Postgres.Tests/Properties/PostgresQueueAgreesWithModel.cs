using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit;

namespace Scheduling.Postgres.Tests.Properties;

/// <summary>
/// Model-based property: random sequences of queue operations run against PostgreSQL and against
/// the in-memory queue (the model) on one fake clock: enqueues (graphs, unique keys, sized jobs),
/// acquisitions, heartbeats, single and mixed acknowledgement batches (stale and repeated leases
/// included), acknowledge-and-acquire, cancel, redrive, rescue and purge. After every step the two
/// must agree on every result, every job and the run history, and the queue invariants must hold.
/// A failure shrinks to a short, readable sequence of steps.
/// </summary>
public sealed class PostgresQueueAgreesWithModel(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    private static readonly string[] Workers = ["w0", "w1", "w2"];
    private static readonly string[] Queues = ["q0", "q1"];

    [Fact]
    public void Random_operation_sequences_agree_with_the_model_and_keep_the_invariants()
    {
        var arbitrary = Arb.From(Gen.ListOf(StepGen()).Select(steps => steps.ToArray()), Shrink);
        var property = Prop.ForAll(arbitrary, steps => Task.Run(() => RunAsync(steps, agingStep: null)).GetAwaiter().GetResult());
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(120).WithEndSize(60), property);
    }

    [Fact]
    public void With_aging_random_operation_sequences_agree_with_the_model()
    {
        var arbitrary = Arb.From(Gen.ListOf(StepGen()).Select(steps => steps.ToArray()), Shrink);
        var property = Prop.ForAll(arbitrary, steps => Task.Run(() => RunAsync(steps, agingStep: TimeSpan.FromSeconds(7))).GetAwaiter().GetResult());
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60).WithEndSize(60), property);
    }

    private static Gen<Step> StepGen()
    {
        var spec =
            from priority in Gen.Choose(-1, 2)
            from delay in Gen.Elements(0, 0, 0, 10, 45)
            from maxAttempts in Gen.Choose(1, 3)
            from uniqueKey in Gen.Elements<string?>(null, null, null, "u0", "u1", "forever")
            from queue in Gen.Elements(Queues)
            from parents in Gen.Frequency((3, Gen.Constant(Array.Empty<int>())), (2, Gen.ArrayOf(Gen.Choose(0, 50), 1)), (1, Gen.ArrayOf(Gen.Choose(0, 50), 2)))
            from runAnyway in Gen.Elements(false, false, true)
            from localParent in Gen.Elements(-1, -1, 0, 1)
            from command in Gen.Elements<string?>(null, null, "etl a", "etl b")
            select new JobSpec(priority, delay, maxAttempts, uniqueKey, queue, parents, runAnyway, localParent, command);
        var acquire =
            from worker in Gen.Elements(Workers)
            from max in Gen.Choose(1, 3)
            from queue in Gen.Elements(Queues)
            select (Step)new Acquire(worker, max, queue);
        var fail =
            from lease in Gen.Choose(0, 50)
            from retryable in Gen.Elements(true, true, false)
            select (Step)new Fail(lease, retryable);
        var ack =
            from lease in Gen.Choose(0, 50)
            from kind in Gen.Elements(JobAckKind.Succeeded, JobAckKind.Succeeded, JobAckKind.Failed, JobAckKind.Released)
            from peak in Gen.Elements<int?>(null, 300, 700, 1500)
            select new AckSpec(lease, kind, peak);
        var ackAndAcquire =
            from acks in Gen.ListOf(ack, 2)
            from take in acquire
            select (Step)new AckAndAcquire(acks.ToArray(), (Acquire)take);
        return Gen.Frequency(
            (5, spec.Select(s => (Step)new Enqueue(s))),
            (2, Gen.ListOf(spec, 3).Select(s => (Step)new EnqueueMany(s.ToArray()))),
            (6, acquire),
            (2, Gen.Elements(Workers).Select(w => (Step)new Heartbeat(w))),
            (4, Gen.Choose(0, 50).Select(i => (Step)new Complete(i))),
            (2, Gen.Choose(1, 4).SelectMany(n => Gen.ListOf(ack, n)).Select(a => (Step)new AckBatch(a.ToArray()))),
            (2, ackAndAcquire),
            (1, Gen.Elements(0, 30, 90).Select(s => (Step)new Purge(s))),
            (3, fail),
            (1, Gen.Choose(0, 50).Select(i => (Step)new Release(i))),
            (1, Gen.Choose(0, 50).Select(i => (Step)new Cancel(i))),
            (1, Gen.Choose(0, 50).Select(i => (Step)new Redrive(i))),
            (3, Gen.Elements(1, 5, 20, 31, 60).Select(s => (Step)new Advance(s))),
            (2, Gen.Constant((Step)new Rescue())));
    }

    /// <summary>Shrinks by dropping chunks of steps, then single steps.</summary>
    private static IEnumerable<Step[]> Shrink(Step[] steps)
    {
        for (var size = steps.Length / 2; size >= 1; size /= 2)
        {
            for (var start = 0; start + size <= steps.Length; start += size)
                yield return steps.Take(start).Concat(steps.Skip(start + size)).ToArray();
        }
    }

    private async Task<bool> RunAsync(Step[] steps, TimeSpan? agingStep)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 9, 0, 0, TimeSpan.Zero));
        var rules = new JobQueueOptions { MaxErrorsKept = 3, Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromSeconds(5), MaxDelay = TimeSpan.FromSeconds(40), Jitter = RetryJitter.None }, AgingStep = agingStep };
        // Both stores size jobs with a command from their own run history, with the same rules.
        var ara = new AraOptions();
        var modelHistory = new InMemoryRunHistory(ara, time);
        var model = new InMemoryJobQueue(new ResourceAllocator(modelHistory, null, ara), modelHistory, rules, time);
        var options = new PostgresQueueOptions { Schema = database.NewSchema(), UseDatabaseClock = false };
        var real = new PostgresJobQueue(database.DataSource, options, rules, time, new ResourceAllocator(new PostgresRunHistory(database.DataSource, options, ara, time), null, ara));
        await real.MigrateAsync();
        var run = new Run(model, modelHistory, real, time, database.DataSource);
        for (var i = 0; i < steps.Length; i++)
        {
            try
            {
                await run.ApplyAsync(steps[i]);
                await run.CheckAsync();
            }
            catch (Exception ex)
            {
                throw new InvalidOperationException($"Step {i + 1} of {steps.Length} ({steps[i]}) broke agreement or an invariant: {ex.Message}", ex);
            }
        }

        return true;
    }

    private sealed class Run(InMemoryJobQueue model, InMemoryRunHistory modelHistory, PostgresJobQueue real, FakeTimeProvider time, NpgsqlDataSource dataSource)
    {
        private readonly List<long> _modelIds = [];
        private readonly Dictionary<long, long> _toReal = [];
        private readonly List<(JobLease Model, JobLease Real)> _leases = [];
        private readonly HashSet<long> _succeeded = [];

        public async Task ApplyAsync(Step step)
        {
            switch (step)
            {
                case Enqueue e:
                    Record([await model.EnqueueAsync(e.Spec.ToRequest(time, ModelParent, null))], [await real.EnqueueAsync(e.Spec.ToRequest(time, RealParent, null))]);
                    break;
                case EnqueueMany m:
                    Record(await model.EnqueueManyAsync(m.Specs.Select((s, i) => s.ToRequest(time, ModelParent, i)).ToArray()),
                           await real.EnqueueManyAsync(m.Specs.Select((s, i) => s.ToRequest(time, RealParent, i)).ToArray()));
                    break;
                case Acquire a:
                    var request = new AcquireRequest(a.Queue, a.Worker, a.Max, Lease);
                    Acquired(await model.AcquireAsync(request), await real.AcquireAsync(request));
                    break;
                case Heartbeat h:
                    // Every lease handed out so far (stale ones and other workers' included): only the worker's live ones are held.
                    var heldModel = await model.HeartbeatAsync(h.Worker, _leases.Select(l => l.Model).ToArray(), Lease);
                    var heldReal = await real.HeartbeatAsync(h.Worker, _leases.Select(l => l.Real).ToArray(), Lease);
                    SameSequence(heldModel.Select(l => (_toReal[l.JobId], l.CancellationRequested)).Order(), heldReal.Select(l => (l.JobId, l.CancellationRequested)).Order(), "held leases");
                    break;
                case Complete c:
                    await AckAsync(c.Lease, lease => JobAck.Success(lease));
                    break;
                case Fail f:
                    await AckAsync(f.Lease, lease => JobAck.Failure(lease, "failed", f.Retryable));
                    break;
                case Release r:
                    await AckAsync(r.Lease, lease => new JobAck(lease, JobAckKind.Released));
                    break;
                case Cancel c when _modelIds.Count > 0:
                    var id = _modelIds[c.Job % _modelIds.Count];
                    Same(await model.CancelAsync(id), await real.CancelAsync(_toReal[id]), "cancel outcome");
                    break;
                case Redrive r when _modelIds.Count > 0:
                    var redrive = _modelIds[r.Job % _modelIds.Count];
                    Same(await model.RedriveAsync(redrive), await real.RedriveAsync(_toReal[redrive]), "redrive outcome");
                    break;
                case Advance a:
                    time.Advance(TimeSpan.FromSeconds(a.Seconds));
                    break;
                case Rescue:
                    Same(await model.RescueExpiredLeasesAsync(), await real.RescueExpiredLeasesAsync(), "rescued count");
                    break;
                case AckBatch b when _leases.Count > 0:
                    // Several kinds in one batch, and the same lease twice: the first acknowledgement of a job wins.
                    var picked = b.Acks.Select(a => (Spec: a, Leases: _leases[a.Lease % _leases.Count])).ToArray();
                    var ackedModel = await model.AcknowledgeAsync(picked.Select(p => p.Spec.ToAck(p.Leases.Model)).ToArray());
                    var ackedReal = await real.AcknowledgeAsync(picked.Select(p => p.Spec.ToAck(p.Leases.Real)).ToArray());
                    SameSequence(ackedModel.Select(a => (a.Applied, a.State)), ackedReal.Select(a => (a.Applied, a.State)), "acknowledgements");
                    break;
                case AckAndAcquire aa when _leases.Count > 0:
                    var pairs = aa.Acks.Select(a => (Spec: a, Leases: _leases[a.Lease % _leases.Count])).ToArray();
                    var take = new AcquireRequest(aa.Take.Queue, aa.Take.Worker, aa.Take.Max, Lease);
                    var bothModel = await ((IJobWorkerStore)model).AcknowledgeAndAcquireAsync(pairs.Select(p => p.Spec.ToAck(p.Leases.Model)).ToArray(), take);
                    var bothReal = await real.AcknowledgeAndAcquireAsync(pairs.Select(p => p.Spec.ToAck(p.Leases.Real)).ToArray(), take);
                    SameSequence(bothModel.Acknowledged.Select(a => (a.Applied, a.State)), bothReal.Acknowledged.Select(a => (a.Applied, a.State)), "acknowledgements");
                    Acquired(bothModel.Acquired, bothReal.Acquired);
                    break;
                case Purge p:
                    var age = TimeSpan.FromSeconds(p.AgeSeconds);
                    Same(await model.PurgeFinishedAsync(age, 1000), await real.PurgeFinishedAsync(age, 1000), "purged count");
                    foreach (var kept in _modelIds.ToArray())
                    {
                        if (await model.GetJobAsync(kept) is not null) continue;
                        if (await real.GetJobAsync(_toReal[kept]) is not null) throw new InvalidOperationException($"Job {_toReal[kept]} was purged from the model only.");
                        _modelIds.Remove(kept);
                    }

                    break;
            }
        }

        /// <summary>A model error naming a parent job, with the parent's PostgreSQL id (the stores number jobs independently).</summary>
        private string InRealIds(string message) =>
            System.Text.RegularExpressions.Regex.Replace(message, @"^Parent job (\d+)", m => $"Parent job {_toReal[long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)]}");

        private long? ModelParent(int index) => _modelIds.Count == 0 ? null : _modelIds[index % _modelIds.Count];

        private long? RealParent(int index) => ModelParent(index) is { } id ? _toReal[id] : null;

        public async Task CheckAsync()
        {
            foreach (var modelId in _modelIds)
            {
                var m = await model.GetJobAsync(modelId) ?? throw new InvalidOperationException($"Model lost job {modelId}.");
                var r = await real.GetJobAsync(_toReal[modelId]) ?? throw new InvalidOperationException($"PostgreSQL lost job {_toReal[modelId]}.");
                Same((m.State, m.Attempt, m.Priority, m.RunAt, m.Queue, m.LockedBy, m.CancellationRequested, m.LeaseExpiresAt, m.FinalizedAt),
                     (r.State, r.Attempt, r.Priority, r.RunAt, r.Queue, r.LockedBy, r.CancellationRequested, r.LeaseExpiresAt, r.FinalizedAt), $"job {r.Id}");
                SameSequence(m.Errors.Select(e => (e.Attempt, e.At, InRealIds(e.Message))), r.Errors.Select(e => (e.Attempt, e.At, e.Message)), $"errors of job {r.Id}");
                Same((m.EffectivePriority, m.PendingParents, m.OnParentFailure), (r.EffectivePriority, r.PendingParents, r.OnParentFailure), $"dependencies of job {r.Id}");
                SameSequence(m.Parents.Select(l => (_toReal[l.JobId], l.State)), r.Parents.Select(l => (l.JobId, l.State)), $"parents of job {r.Id}");
                SameSequence(m.Children.Select(l => (_toReal[l.JobId], l.State)), r.Children.Select(l => (l.JobId, l.State)), $"children of job {r.Id}");
                if (r.Attempt > r.MaxAttempts) throw new InvalidOperationException($"Job {r.Id} ran {r.Attempt} attempts of {r.MaxAttempts}.");
                if (r.State == JobState.Succeeded) _succeeded.Add(r.Id);
            }

            // No job is held by two live leases: every running job's stored token is one we were handed, exactly once.
            await using var command = dataSource.CreateCommand($"SELECT id, state, lease_token FROM \"{real.Schema}\".jobs");
            await using var reader = await command.ExecuteReaderAsync();
            var rows = 0;
            while (await reader.ReadAsync())
            {
                rows++;
                var (id, state, token) = (reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? (Guid?)null : reader.GetGuid(2));
                if ((state == "running") != token.HasValue) throw new InvalidOperationException($"Job {id} is {state} with lease token {token}.");
                if (token is { } t && _leases.Count(l => l.Real.JobId == id && l.Real.Token == t) != 1)
                    throw new InvalidOperationException($"Running job {id} is not held by exactly one lease handed out.");
            }

            if (rows != _modelIds.Count) throw new InvalidOperationException($"PostgreSQL holds {rows} jobs; {_modelIds.Count} were created.");
            await reader.DisposeAsync();

            // The run history: one record per acknowledged attempt of a sized job, under its valid lease.
            var realRuns = new List<(string, string, int, int, DateTimeOffset)>();
            await using (var runs = dataSource.CreateCommand($"SELECT definition_id, command_hash, allocated_memory_mb, peak_memory_mb, finished_at FROM \"{real.Schema}\".run_history"))
            await using (var runReader = await runs.ExecuteReaderAsync())
                while (await runReader.ReadAsync()) realRuns.Add((runReader.GetString(0), runReader.GetString(1), runReader.GetInt32(2), runReader.GetInt32(3), runReader.GetFieldValue<DateTimeOffset>(4)));
            SameSequence(modelHistory.Runs.Select(r => (r.DefinitionId, r.CommandHash, r.AllocatedMemoryMb, r.PeakMemoryMb, r.FinishedAt)).Order(), realRuns.Order(), "run history");

            // The maintained counts (migration 0022), before any fold: folded counts plus the changes the
            // triggers appended equal a count of the table, key by key.
            var (maintained, counted) = await PostgresDatabaseFixture.MaintainedCountsAsync(dataSource, real.Schema);
            Same(counted, maintained, "maintained job counts");

            // The statistics and activity both stores report (PostgreSQL's read those counts, folding them first).
            SameSequence((await model.GetQueueStatsAsync()).Select(q => (q.Queue, q.Available, q.Scheduled, q.Running, q.Waiting, q.OldestDue, q.Oversized)),
                (await real.GetQueueStatsAsync()).Select(q => (q.Queue, q.Available, q.Scheduled, q.Running, q.Waiting, q.OldestDue, q.Oversized)), "queue statistics");
            SameSequence(await model.GetActivityAsync(TimeSpan.FromDays(1)), await real.GetActivityAsync(TimeSpan.FromDays(1)), "activity");
        }

        private void Acquired(IReadOnlyList<AcquiredJob> fromModel, IReadOnlyList<AcquiredJob> fromReal)
        {
            SameSequence(fromModel.Select(j => _toReal[j.Id]), fromReal.Select(j => j.Id), "acquired jobs");
            SameSequence(fromModel.Select(j => (j.Attempt, j.Allocation?.MemoryMb, j.Allocation?.Source)), fromReal.Select(j => (j.Attempt, j.Allocation?.MemoryMb, j.Allocation?.Source)), "attempts and allocations");
            foreach (var job in fromReal)
            {
                if (_succeeded.Contains(job.Id)) throw new InvalidOperationException($"Succeeded job {job.Id} was delivered again.");
            }

            _leases.AddRange(fromModel.Zip(fromReal, (m, r) => (m.Lease, r.Lease)));
        }

        private async Task AckAsync(int index, Func<JobLease, JobAck> ack)
        {
            if (_leases.Count == 0) return;
            var (m, r) = _leases[index % _leases.Count]; // stale leases included: both must refuse them alike
            var fromModel = Assert.Single(await model.AcknowledgeAsync([ack(m)]));
            var fromReal = Assert.Single(await real.AcknowledgeAsync([ack(r)]));
            Same((fromModel.Applied, fromModel.State), (fromReal.Applied, fromReal.State), "acknowledgement");
        }

        private void Record(IReadOnlyList<EnqueueResult> fromModel, IReadOnlyList<EnqueueResult> fromReal)
        {
            // New jobs first: a request may return a job created by a later request of the same call (parents are written first).
            for (var i = 0; i < fromModel.Count; i++)
            {
                Same(fromModel[i].Created, fromReal[i].Created, "created");
                if (!fromModel[i].Created) continue;
                _modelIds.Add(fromModel[i].JobId);
                _toReal[fromModel[i].JobId] = fromReal[i].JobId;
            }

            for (var i = 0; i < fromModel.Count; i++)
            {
                if (!fromModel[i].Created) Same(_toReal[fromModel[i].JobId], fromReal[i].JobId, "existing unique job");
            }
        }

        private static void Same<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new InvalidOperationException($"{what}: model {expected}, PostgreSQL {actual}");
        }

        private static void SameSequence<T>(IEnumerable<T> expected, IEnumerable<T> actual, string what)
        {
            var e = expected.ToList();
            var a = actual.ToList();
            if (!e.SequenceEqual(a))
                throw new InvalidOperationException($"{what}: model [{string.Join(", ", e)}], PostgreSQL [{string.Join(", ", a)}]");
        }
    }

    private static readonly JobDefinition Etl = new("etl", 512);

    private sealed record JobSpec(int Priority, int DelaySeconds, int MaxAttempts, string? UniqueKey, string Queue, int[] Parents, bool RunAnyway, int LocalParent, string? Command)
    {
        public override string ToString() =>
            $"JobSpec(p{Priority}, +{DelaySeconds}s, x{MaxAttempts}, {UniqueKey ?? "-"}, {Queue}, parents [{string.Join(",", Parents)}]{(LocalParent >= 0 ? $" local {LocalParent}" : "")}{(RunAnyway ? " run-anyway" : "")}{(Command is null ? "" : $" '{Command}'")})";

        /// <summary>The request; parents are existing jobs by index (none before the first job), and in a batch an earlier request of it.</summary>
        public JobRequest ToRequest(TimeProvider time, Func<int, long?> parent, int? index) => new("k")
        {
            LocalKey = index is { } own ? $"l{own}" : null,
            DependsOn = Parents.Select(parent).OfType<long>().Select(JobDependency.OnJob)
                .Concat(index is { } i && LocalParent >= 0 && LocalParent < i ? [JobDependency.OnRequest($"l{LocalParent}")] : [])
                .ToArray(),
            OnParentFailure = RunAnyway ? ParentFailurePolicy.RunAnyway : ParentFailurePolicy.CancelChild,
            Priority = Priority,
            RunAt = DelaySeconds == 0 ? null : time.GetUtcNow().AddSeconds(DelaySeconds),
            MaxAttempts = MaxAttempts,
            UniqueKey = UniqueKey,
            UniqueScope = UniqueKey == "forever" ? UniqueKeyScope.AnyState : UniqueKeyScope.Active,
            Queue = Queue,
            Command = Command,
            Definition = Command is null ? null : Etl,
        };
    }

    /// <summary>One acknowledgement of a lease by index; a success may carry a measured peak (a run record for a sized job).</summary>
    private sealed record AckSpec(int Lease, JobAckKind Kind, int? PeakMemoryMb)
    {
        public JobAck ToAck(JobLease lease) => Kind switch
        {
            JobAckKind.Succeeded => JobAck.Success(lease) with { Usage = PeakMemoryMb is { } peak ? new ResourceUsage { PeakMemoryMb = peak } : null, RunDuration = TimeSpan.FromSeconds(2) },
            JobAckKind.Failed => JobAck.Failure(lease, "failed"),
            _ => new JobAck(lease, JobAckKind.Released),
        };
    }

    private abstract record Step;
    private sealed record Enqueue(JobSpec Spec) : Step;
    private sealed record EnqueueMany(JobSpec[] Specs) : Step
    {
        public override string ToString() => $"EnqueueMany [{string.Join("; ", Specs.Select(s => s.ToString()))}]";
    }

    private sealed record Acquire(string Worker, int Max, string Queue) : Step;
    private sealed record Heartbeat(string Worker) : Step;
    private sealed record Complete(int Lease) : Step;
    private sealed record Fail(int Lease, bool Retryable) : Step;
    private sealed record Release(int Lease) : Step;
    private sealed record Cancel(int Job) : Step;
    private sealed record Redrive(int Job) : Step;
    private sealed record Advance(int Seconds) : Step;
    private sealed record Rescue : Step;
    private sealed record AckBatch(AckSpec[] Acks) : Step
    {
        public override string ToString() => $"AckBatch [{string.Join("; ", Acks.Select(a => a.ToString()))}]";
    }

    private sealed record AckAndAcquire(AckSpec[] Acks, Acquire Take) : Step
    {
        public override string ToString() => $"AckAndAcquire [{string.Join("; ", Acks.Select(a => a.ToString()))}] then {Take}";
    }

    private sealed record Purge(int AgeSeconds) : Step;
}
