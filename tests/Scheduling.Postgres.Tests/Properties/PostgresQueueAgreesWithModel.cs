using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit;

namespace Scheduling.Postgres.Tests.Properties;

/// <summary>
/// Model-based property: random sequences of queue operations run against PostgreSQL and against
/// the in-memory queue (the model) on one fake clock. After every step the two must agree on
/// every result and every job, and the queue invariants must hold. A failure shrinks to a short,
/// readable sequence of steps.
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
            select new JobSpec(priority, delay, maxAttempts, uniqueKey, queue, parents, runAnyway, localParent);
        var acquire =
            from worker in Gen.Elements(Workers)
            from max in Gen.Choose(1, 3)
            from queue in Gen.Elements(Queues)
            select (Step)new Acquire(worker, max, queue);
        var fail =
            from lease in Gen.Choose(0, 50)
            from retryable in Gen.Elements(true, true, false)
            select (Step)new Fail(lease, retryable);
        return Gen.Frequency(
            (5, spec.Select(s => (Step)new Enqueue(s))),
            (2, Gen.ListOf(spec, 3).Select(s => (Step)new EnqueueMany(s.ToArray()))),
            (6, acquire),
            (2, Gen.Elements(Workers).Select(w => (Step)new Heartbeat(w))),
            (4, Gen.Choose(0, 50).Select(i => (Step)new Complete(i))),
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
        var model = new InMemoryJobQueue(rules, time);
        var real = await database.NewQueueAsync(rules, time);
        var run = new Run(model, real, time, database.DataSource);
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

    private sealed class Run(InMemoryJobQueue model, PostgresJobQueue real, FakeTimeProvider time, NpgsqlDataSource dataSource)
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
                    var fromModel = await model.AcquireAsync(request);
                    var fromReal = await real.AcquireAsync(request);
                    SameSequence(fromModel.Select(j => _toReal[j.Id]), fromReal.Select(j => j.Id), "acquired jobs");
                    SameSequence(fromModel.Select(j => j.Attempt), fromReal.Select(j => j.Attempt), "attempts");
                    foreach (var job in fromReal)
                    {
                        if (_succeeded.Contains(job.Id)) throw new InvalidOperationException($"Succeeded job {job.Id} was delivered again.");
                    }

                    _leases.AddRange(fromModel.Zip(fromReal, (m, r) => (m.Lease, r.Lease)));
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

    private sealed record JobSpec(int Priority, int DelaySeconds, int MaxAttempts, string? UniqueKey, string Queue, int[] Parents, bool RunAnyway, int LocalParent)
    {
        public override string ToString() =>
            $"JobSpec(p{Priority}, +{DelaySeconds}s, x{MaxAttempts}, {UniqueKey ?? "-"}, {Queue}, parents [{string.Join(",", Parents)}]{(LocalParent >= 0 ? $" local {LocalParent}" : "")}{(RunAnyway ? " run-anyway" : "")})";

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
}
