using Scheduling.Hosting;

namespace Scheduling;

/// <summary>
/// A complete <see cref="IJobQueue"/> held in process memory: the reference model of the queue
/// contract, a fake for consumers' unit tests, and a queue for demos. Jobs do not survive the process.
/// </summary>
/// <remarks>Thread-safe; time comes from the <see cref="TimeProvider"/> given.</remarks>
public sealed class InMemoryJobQueue : IJobQueue, IJobRetention
{
    private readonly object _gate = new();
    private readonly Dictionary<long, Entry> _jobs = [];
    private readonly Dictionary<string, SortedSet<Entry>> _ready = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _activeUniqueKeys = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _permanentUniqueKeys = new(StringComparer.Ordinal);
    private readonly JobQueueOptions _options;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly QueueSignals? _signals;
    private readonly ResourceAllocator? _allocator;
    private readonly IRunHistoryStore? _history;
    private long _nextId = 1;

    /// <summary>Creates an empty queue.</summary>
    /// <param name="options">Validation and retry rules; defaults when null.</param>
    /// <param name="timeProvider">The clock; the system clock when null.</param>
    public InMemoryJobQueue(JobQueueOptions? options = null, TimeProvider? timeProvider = null)
        : this(options, timeProvider, null, null)
    {
    }

    /// <summary>Creates an empty queue that sizes jobs with <paramref name="allocator"/> and records their runs in <paramref name="history"/>.</summary>
    public InMemoryJobQueue(ResourceAllocator allocator, IRunHistoryStore history, JobQueueOptions? options = null, TimeProvider? timeProvider = null)
        : this(options, timeProvider, null, null, allocator, history)
    {
    }

    internal InMemoryJobQueue(JobQueueOptions? options, TimeProvider? timeProvider, QueueSignals? signals, Random? random, ResourceAllocator? allocator = null, IRunHistoryStore? history = null)
    {
        _allocator = allocator;
        _history = history;
        _options = options ?? new JobQueueOptions();
        _time = timeProvider ?? TimeProvider.System;
        _signals = signals;
        _random = random ?? Random.Shared;
    }

    /// <inheritdoc />
    public async ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var prepared = JobValidation.Prepare(request, _options);
        await JobValidation.AllocateAsync([prepared], _allocator, cancellationToken).ConfigureAwait(false);
        List<PreparedJob> batch = [prepared];
        using var activity = JobTelemetry.StartSend(batch);
        EnqueueResult result;
        lock (_gate)
        {
            CheckConflicts(batch);
            result = Insert(prepared);
        }

        JobTelemetry.Sent(activity, batch, [result]);

        if (result.Created) _signals?.Notify(prepared.Queue);
        return result;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var prepared = JobValidation.PrepareAll(requests, _options);
        await JobValidation.AllocateAsync(prepared, _allocator, cancellationToken).ConfigureAwait(false);
        using var activity = JobTelemetry.StartSend(prepared);
        var results = new EnqueueResult[prepared.Count];
        lock (_gate)
        {
            CheckConflicts(prepared); // all or nothing: reject before writing any
            for (var i = 0; i < prepared.Count; i++) results[i] = Insert(prepared[i]);
        }

        JobTelemetry.Sent(activity, prepared, results);

        foreach (var queue in prepared.Select(p => p.Queue).Distinct(StringComparer.Ordinal)) _signals?.Notify(queue);
        return results;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<AcquiredJob>> AcquireAsync(AcquireRequest request, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        JobValidation.ValidateAcquire(request);
        var acquired = new List<AcquiredJob>();
        lock (_gate)
        {
            if (!_ready.TryGetValue(request.Queue, out var ready)) return ValueTask.FromResult<IReadOnlyList<AcquiredJob>>(acquired);
            var now = Clock.Now(_time);
            var taken = new List<Entry>();
            foreach (var entry in ready)
            {
                if (entry.RunAt > now) continue; // not yet due: scheduled
                taken.Add(entry);
                if (taken.Count == request.MaxJobs) break;
            }

            foreach (var entry in taken)
            {
                ready.Remove(entry);
                entry.State = JobState.Running;
                entry.Attempt++;
                entry.LockedBy = request.WorkerId;
                entry.LeaseToken = Guid.NewGuid();
                entry.LeaseExpiresAt = now + request.LeaseDuration;
                entry.AttemptedAt = now;
                acquired.Add(new AcquiredJob
                {
                    Id = entry.Id, Queue = entry.Queue, Kind = entry.Kind, PayloadJson = entry.PayloadJson, Priority = entry.Priority,
                    MaxAttempts = entry.MaxAttempts, RunAt = entry.RunAt, CreatedAt = entry.CreatedAt,
                    Lease = new JobLease(entry.Id, entry.LeaseToken.Value, entry.Attempt), LeaseExpiresAt = entry.LeaseExpiresAt.Value,
                    Command = entry.Command, Allocation = entry.Allocation, TraceParent = entry.TraceParent, TraceState = entry.TraceState,
                });
            }
        }

        return ValueTask.FromResult<IReadOnlyList<AcquiredJob>>(acquired);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<HeldLease>> HeartbeatAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        JobValidation.ValidateWorkerId(workerId, nameof(workerId));
        JobValidation.ValidateLeaseDuration(leaseDuration, nameof(leaseDuration));
        var held = new List<HeldLease>();
        lock (_gate)
        {
            var expires = Clock.Now(_time) + leaseDuration;
            foreach (var entry in _jobs.Values)
            {
                if (entry.State != JobState.Running || entry.LockedBy != workerId) continue;
                entry.LeaseExpiresAt = expires;
                held.Add(new HeldLease(entry.Id, entry.CancelRequested));
            }
        }

        return ValueTask.FromResult<IReadOnlyList<HeldLease>>(held);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AckResult>> AcknowledgeAsync(IReadOnlyList<JobAck> acks, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        JobValidation.ValidateAcks(acks);
        var results = new AckResult[acks.Count];
        var notify = new HashSet<string>(StringComparer.Ordinal);
        var outcomes = new List<RunOutcome>();
        lock (_gate)
        {
            var now = Clock.Now(_time);
            for (var i = 0; i < acks.Count; i++)
            {
                var ack = acks[i];
                if (_jobs.TryGetValue(ack.Lease.JobId, out var ran) && JobValidation.ToOutcome(ack, ran.Allocation, ran.CommandHash, ran.NormalizedCommandHash, now) is { } outcome)
                    outcomes.Add(outcome);
                if (!_jobs.TryGetValue(ack.Lease.JobId, out var entry) || entry.State != JobState.Running || entry.LeaseToken != ack.Lease.Token)
                {
                    results[i] = new AckResult(ack.Lease.JobId, false, null);
                    continue;
                }

                switch (ack.Kind)
                {
                    case JobAckKind.Succeeded:
                        Finish(entry, JobState.Succeeded, now);
                        break;
                    case JobAckKind.Cancelled:
                        Finish(entry, JobState.Cancelled, now);
                        break;
                    case JobAckKind.Released:
                        if (entry.CancelRequested) Finish(entry, JobState.Cancelled, now);
                        else
                        {
                            entry.Attempt--;
                            MakeReady(entry, entry.RunAt);
                            notify.Add(entry.Queue);
                        }

                        break;
                    default:
                        AddError(entry, entry.Attempt, now, JobValidation.TrimError(ack.Error, _options));
                        if (entry.CancelRequested) Finish(entry, JobState.Cancelled, now);
                        else if (!ack.Retryable || entry.Attempt >= entry.MaxAttempts) Finish(entry, JobState.Dead, now);
                        else MakeReady(entry, now + RetryBackoff.Delay(entry.Attempt, _options.Retry, _random));
                        break;
                }

                results[i] = new AckResult(entry.Id, true, StateAt(entry, now));
            }
        }

        foreach (var queue in notify) _signals?.Notify(queue);
        if (outcomes.Count > 0 && _history is not null) await _history.RecordAsync(outcomes, cancellationToken).ConfigureAwait(false);
        return results;
    }

    /// <inheritdoc />
    public ValueTask<CancelOutcome> CancelAsync(long jobId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            if (!_jobs.TryGetValue(jobId, out var entry)) return ValueTask.FromResult(CancelOutcome.NotFound);
            if (entry.State.IsTerminal()) return ValueTask.FromResult(CancelOutcome.AlreadyFinished);
            if (entry.State == JobState.Running)
            {
                entry.CancelRequested = true;
                return ValueTask.FromResult(CancelOutcome.CancellationRequested);
            }

            _ready[entry.Queue].Remove(entry);
            Finish(entry, JobState.Cancelled, Clock.Now(_time));
            return ValueTask.FromResult(CancelOutcome.Cancelled);
        }
    }

    /// <inheritdoc />
    public ValueTask<int> RescueExpiredLeasesAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var rescued = 0;
        var notify = new HashSet<string>(StringComparer.Ordinal);
        lock (_gate)
        {
            var now = Clock.Now(_time);
            foreach (var entry in _jobs.Values)
            {
                if (entry.State != JobState.Running || entry.LeaseExpiresAt >= now) continue;
                AddError(entry, entry.Attempt, now, $"Lease held by worker '{entry.LockedBy}' expired; the job was rescued.");
                if (entry.CancelRequested) Finish(entry, JobState.Cancelled, now);
                else if (entry.Attempt >= entry.MaxAttempts) Finish(entry, JobState.Dead, now);
                else
                {
                    MakeReady(entry, now);
                    notify.Add(entry.Queue);
                }

                rescued++;
            }
        }

        foreach (var queue in notify) _signals?.Notify(queue);
        return ValueTask.FromResult(rescued);
    }

    /// <inheritdoc />
    public ValueTask<bool> RedriveAsync(long jobId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        string queue;
        lock (_gate)
        {
            if (!_jobs.TryGetValue(jobId, out var entry) || entry.State != JobState.Dead) return ValueTask.FromResult(false);
            var activeKey = entry.UniqueKey is not null && entry.UniqueScope == UniqueKeyScope.Active;
            if (activeKey && _activeUniqueKeys.ContainsKey(entry.UniqueKey!)) return ValueTask.FromResult(false);
            entry.Attempt = 0;
            entry.FinalizedAt = null;
            MakeReady(entry, Clock.Now(_time));
            if (activeKey) _activeUniqueKeys[entry.UniqueKey!] = entry.Id;
            queue = entry.Queue;
        }

        _signals?.Notify(queue);
        return ValueTask.FromResult(true);
    }

    /// <inheritdoc />
    public ValueTask<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            if (!_jobs.TryGetValue(jobId, out var e)) return ValueTask.FromResult<JobInfo?>(null);
            return ValueTask.FromResult<JobInfo?>(new JobInfo
            {
                Id = e.Id, Queue = e.Queue, Kind = e.Kind, PayloadJson = e.PayloadJson, State = StateAt(e, Clock.Now(_time)),
                Priority = e.Priority, Attempt = e.Attempt, MaxAttempts = e.MaxAttempts, RunAt = e.RunAt, CreatedAt = e.CreatedAt,
                AttemptedAt = e.AttemptedAt, FinalizedAt = e.FinalizedAt, LockedBy = e.LockedBy, LeaseExpiresAt = e.LeaseExpiresAt,
                CancellationRequested = e.CancelRequested, UniqueKey = e.UniqueKey, Errors = e.Errors.ToArray(),
                Command = e.Command, CommandHash = e.CommandHash, Description = e.Description, Allocation = e.Allocation,
            });
        }
    }

    private void CheckConflicts(List<PreparedJob> prepared)
    {
        foreach (var job in prepared)
        {
            if (job.UniqueKey is not null && job.OnUniqueConflict == UniqueKeyConflict.Reject && KeysOf(job.UniqueScope).TryGetValue(job.UniqueKey, out var existing))
                throw new DuplicateJobException(job.UniqueKey, existing);
        }
    }

    private EnqueueResult Insert(PreparedJob job)
    {
        if (job.UniqueKey is not null && KeysOf(job.UniqueScope).TryGetValue(job.UniqueKey, out var existing))
            return new EnqueueResult(existing, false);
        var now = Clock.Now(_time);
        var entry = new Entry
        {
            Id = _nextId++, Queue = job.Queue, Kind = job.Kind, PayloadJson = job.PayloadJson, Priority = job.Priority,
            RunAt = job.RunAt ?? now, MaxAttempts = job.MaxAttempts, UniqueKey = job.UniqueKey, UniqueScope = job.UniqueScope, CreatedAt = now, State = JobState.Available,
            Command = job.Command, CommandHash = job.CommandHash, NormalizedCommandHash = job.NormalizedCommandHash, Description = job.Description, Allocation = job.Allocation,
            TraceParent = job.TraceParent, TraceState = job.TraceState,
        };
        _jobs.Add(entry.Id, entry);
        ReadySet(entry.Queue).Add(entry);
        if (entry.UniqueKey is not null) KeysOf(entry.UniqueScope)[entry.UniqueKey] = entry.Id;
        return new EnqueueResult(entry.Id, true);
    }

    /// <inheritdoc />
    public ValueTask<int> PurgeFinishedAsync(DateTimeOffset finishedBefore, int batchSize, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        lock (_gate)
        {
            var old = _jobs.Values.Where(e => e.State.IsTerminal() && e.FinalizedAt < finishedBefore).Take(batchSize).ToList();
            foreach (var entry in old)
            {
                _jobs.Remove(entry.Id);
                if (entry.UniqueKey is not null && entry.UniqueScope == UniqueKeyScope.AnyState && _permanentUniqueKeys.TryGetValue(entry.UniqueKey, out var holder) && holder == entry.Id)
                    _permanentUniqueKeys.Remove(entry.UniqueKey);
            }

            return ValueTask.FromResult(old.Count);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<QueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            var now = Clock.Now(_time);
            return ValueTask.FromResult<IReadOnlyList<QueueStats>>(_jobs.Values
                .Where(e => e.State is JobState.Available or JobState.Running)
                .GroupBy(e => e.Queue, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new QueueStats(g.Key,
                    g.LongCount(e => e.State == JobState.Available && e.RunAt <= now),
                    g.LongCount(e => e.State == JobState.Available && e.RunAt > now),
                    g.LongCount(e => e.State == JobState.Running),
                    g.Where(e => e.State == JobState.Available && e.RunAt <= now).Select(e => (DateTimeOffset?)e.RunAt).Min()))
                .ToArray());
        }
    }

    private Dictionary<string, long> KeysOf(UniqueKeyScope scope) => scope == UniqueKeyScope.AnyState ? _permanentUniqueKeys : _activeUniqueKeys;

    private SortedSet<Entry> ReadySet(string queue)
    {
        if (!_ready.TryGetValue(queue, out var set))
        {
            set = new SortedSet<Entry>(Comparer<Entry>.Create(static (a, b) => JobOrder.Compare(a.Priority, a.RunAt, a.Id, b.Priority, b.RunAt, b.Id)));
            _ready.Add(queue, set);
        }

        return set;
    }

    private void MakeReady(Entry entry, DateTimeOffset runAt)
    {
        ClearLease(entry);
        entry.State = JobState.Available;
        entry.RunAt = runAt;
        ReadySet(entry.Queue).Add(entry);
    }

    private void Finish(Entry entry, JobState state, DateTimeOffset now)
    {
        ClearLease(entry);
        entry.State = state;
        entry.FinalizedAt = now;
        if (entry.UniqueKey is not null && entry.UniqueScope == UniqueKeyScope.Active && _activeUniqueKeys.TryGetValue(entry.UniqueKey, out var holder) && holder == entry.Id)
            _activeUniqueKeys.Remove(entry.UniqueKey);
    }

    private static void ClearLease(Entry entry)
    {
        entry.LockedBy = null;
        entry.LeaseToken = null;
        entry.LeaseExpiresAt = null;
    }

    private void AddError(Entry entry, int attempt, DateTimeOffset at, string message)
    {
        entry.Errors.Add(new JobAttemptError(attempt, at, message));
        while (entry.Errors.Count > _options.MaxErrorsKept) entry.Errors.RemoveAt(0);
    }

    private static JobState StateAt(Entry entry, DateTimeOffset now) =>
        entry.State == JobState.Available && entry.RunAt > now ? JobState.Scheduled : entry.State;

    private sealed class Entry
    {
        public long Id;
        public string Queue = "";
        public string Kind = "";
        public string? PayloadJson;
        public int Priority;
        public DateTimeOffset RunAt;
        public int MaxAttempts;
        public string? UniqueKey;
        public UniqueKeyScope UniqueScope;
        public DateTimeOffset CreatedAt;
        public JobState State;
        public int Attempt;
        public string? LockedBy;
        public Guid? LeaseToken;
        public DateTimeOffset? LeaseExpiresAt;
        public DateTimeOffset? AttemptedAt;
        public DateTimeOffset? FinalizedAt;
        public bool CancelRequested;
        public string? Command;
        public string? CommandHash;
        public string? NormalizedCommandHash;
        public string? Description;
        public ResourceAllocation? Allocation;
        public string? TraceParent;
        public string? TraceState;
        public readonly List<JobAttemptError> Errors = [];
    }
}
