namespace Scheduling;

/// <summary>
/// A complete <see cref="IJobQueue"/> held in process memory: the reference model of the queue
/// contract, a fake for consumers' unit tests, and a queue for demos. Jobs do not survive the process.
/// </summary>
/// <remarks>Thread-safe; time comes from the <see cref="TimeProvider"/> given.</remarks>
public sealed class InMemoryJobQueue : IJobQueue, IJobWorkerStore, IRecurringJobStore
{
    private readonly object _gate = new();
    private readonly Dictionary<long, Entry> _jobs = [];
    private readonly Dictionary<(string Queue, DateTimeOffset Minute), (long Succeeded, long Dead, long Cancelled)> _activity = [];
    private readonly HashSet<string> _paused = new(StringComparer.Ordinal);
    private readonly Dictionary<string, QueueLimitState> _limits = new(StringComparer.Ordinal);
    // The partition keys with active jobs, per queue: the claim's round-robin cursor and per-key buckets (SQL twin: queue_keys).
    private readonly Dictionary<string, Dictionary<string, KeyState>> _keys = new(StringComparer.Ordinal);
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
    private long _nextBatchId = 1;
    private readonly Dictionary<long, BatchEntry> _batches = [];
    private readonly SortedDictionary<string, RecurringJobDefinition> _recurring = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, WorkerHostInfo> _hosts = new(StringComparer.Ordinal);

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
        JobValidation.ValidateOptions(_options, nameof(options));
        _time = timeProvider ?? TimeProvider.System;
        _signals = signals;
        _random = random ?? Random.Shared;
    }

    /// <inheritdoc />
    public async ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return (await EnqueuePipeline.RunAsync([request], _options,
            async written => await EnqueueAsync(JobValidation.PrepareOne(written[0], _options), cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false))[0];
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return await EnqueuePipeline.RunAsync(requests, _options,
            async written => await EnqueueAsync(JobValidation.PrepareAll(written, _options), cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Sizes and traces one enqueue call and writes it under the gate: by <see cref="Write"/>, or by
    /// <paramref name="write"/> when the call belongs to a batch (which writes it with its bookkeeping).
    /// </summary>
    private async ValueTask<EnqueueResult[]> EnqueueAsync(PreparedBatch batch, CancellationToken cancellationToken, Func<DateTimeOffset, HashSet<string>, EnqueueResult[]>? write = null)
    {
        await JobValidation.AllocateAsync(batch.Jobs, _allocator, cancellationToken).ConfigureAwait(false);
        using var activity = JobTelemetry.StartSend(batch.Jobs);
        var notify = new HashSet<string>(StringComparer.Ordinal);
        EnqueueResult[] results;
        lock (_gate) results = write is null ? Write(batch, Clock.Now(_time), notify) : write(Clock.Now(_time), notify);
        JobTelemetry.Sent(activity, batch.Jobs, results);
        foreach (var queue in notify) _signals?.Notify(queue);
        return results;
    }

    /// <summary>Writes one enqueue call under the gate, all or nothing: it is refused before anything is written.</summary>
    private EnqueueResult[] Write(PreparedBatch batch, DateTimeOffset now, HashSet<string> notify)
    {
        var prepared = batch.Jobs;
        var results = new EnqueueResult[prepared.Count];
        CheckConflicts(prepared);
        var missing = batch.Graph.AllExistingParents().Where(id => !_jobs.ContainsKey(id)).ToArray();
        if (missing.Length > 0) throw batch.Graph.UnknownParents(missing, batch.Name);

        var waiting = new List<Entry>();
        foreach (var layer in batch.Graph.Layers)
        {
            foreach (var i in layer)
            {
                var parents = batch.Graph.ExistingParents[i].Concat(batch.Graph.LocalParents[i].Select(p => results[p].JobId)).Distinct().Select(id => _jobs[id]).ToArray();
                results[i] = Insert(prepared[i], parents, now);
                if (!results[i].Created) continue;
                var entry = _jobs[results[i].JobId];
                if (entry.State == JobState.Available) notify.Add(prepared[i].Queue);
                else if (entry.State == JobState.Waiting) waiting.Add(entry);
            }
        }

        // Their unfinished ancestors inherit the new waiting jobs' priority, highest first, so each
        // ancestor is raised once by the highest that reaches it (SQL twin: raise_ancestors).
        foreach (var entry in waiting.OrderByDescending(e => e.EffectivePriority).ToArray())
            foreach (var edge in entry.ParentEdges.Where(d => !d.Resolved)) Raise(edge.Parent, entry.EffectivePriority);
        return results;
    }

    /// <inheritdoc />
    public ValueTask<BatchResult> EnqueueBatchAsync(BatchRequest batch, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return EnqueuePipeline.RunBatchAsync(batch, _options, written => WriteBatchAsync(written, cancellationToken), cancellationToken);
    }

    private async ValueTask<BatchResult> WriteBatchAsync(BatchRequest batch, CancellationToken cancellationToken)
    {
        var prepared = JobValidation.PrepareBatch(batch, _options);
        var batchId = 0L;
        var written = await EnqueueAsync(prepared.Jobs, cancellationToken, (now, notify) =>
        {
            var parent = prepared.ParentBatchId is { } parentId ? OpenBatch(parentId, "batch.ParentBatchId") : null;
            var results = Write(prepared.For(_nextBatchId), now, notify); // refused before anything is written
            var (onSuccess, onComplete) = prepared.CallbackIds(results);
            var entry = new BatchEntry { Id = batchId = _nextBatchId++, ParentId = parent?.Id, OnSuccess = onSuccess, OnComplete = onComplete, CreatedAt = now };
            _batches.Add(entry.Id, entry);
            entry.Counts = entry.Counts.Add(prepared.Members(results).Where(r => r.Created).Select(r => _jobs[r.JobId].State));
            if (parent is not null) parent.Counts = parent.Counts.Add([JobState.Waiting]);
            SettleBatchIfDone(entry, now, notify); // every member born cancelled
            return results;
        }).ConfigureAwait(false);
        return prepared.Result(batchId, written);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<EnqueueResult>> AddToBatchAsync(long batchId, IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        BatchRules.ValidateAdd(batchId, jobs);
        return EnqueuePipeline.RunAsync(jobs, _options, written => AddToBatchCoreAsync(batchId, written, cancellationToken), cancellationToken);
    }

    private async ValueTask<IReadOnlyList<EnqueueResult>> AddToBatchCoreAsync(long batchId, IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken)
    {
        var prepared = JobValidation.PrepareAll(jobs, _options).InBatch(batchId);
        return await EnqueueAsync(prepared, cancellationToken, (now, notify) =>
        {
            var batch = OpenBatch(batchId, nameof(batchId));
            var results = Write(prepared, now, notify);
            batch.Counts = batch.Counts.Add(results.Where(r => r.Created).Select(r => _jobs[r.JobId].State));
            return results;
        }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<BatchInfo?> GetBatchAsync(long batchId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            if (!_batches.TryGetValue(batchId, out var b)) return ValueTask.FromResult<BatchInfo?>(null);
            return ValueTask.FromResult<BatchInfo?>(new BatchInfo
            {
                Id = b.Id, ParentBatchId = b.ParentId, Total = b.Counts.Total, Pending = b.Counts.Pending, Succeeded = b.Counts.Succeeded,
                Failed = b.Counts.Failed, Cancelled = b.Counts.Cancelled, OnSuccessJobId = b.OnSuccess, OnCompleteJobId = b.OnComplete,
                CreatedAt = b.CreatedAt, SettledAt = b.SettledAt,
            });
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<RecurringJobDefinition>> ListRecurringJobsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate) return ValueTask.FromResult<IReadOnlyList<RecurringJobDefinition>>(_recurring.Values.ToArray());
    }

    /// <inheritdoc />
    public ValueTask<bool> SaveRecurringJobAsync(RecurringJobDefinition job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        cancellationToken.ThrowIfCancellationRequested();
        bool added;
        lock (_gate)
        {
            added = !_recurring.ContainsKey(job.Name);
            _recurring[job.Name] = job with { UpdatedAt = Clock.Now(_time) };
        }

        _signals?.Notify(QueueSignals.RecurringJobsChanged);
        return ValueTask.FromResult(added);
    }

    /// <inheritdoc />
    public ValueTask<bool> SetRecurringJobPausedAsync(string name, bool paused, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            if (!_recurring.TryGetValue(name, out var job)) return ValueTask.FromResult(false);
            _recurring[name] = job with { Paused = paused, UpdatedAt = Clock.Now(_time) };
        }

        _signals?.Notify(QueueSignals.RecurringJobsChanged);
        return ValueTask.FromResult(true);
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveRecurringJobAsync(string name, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        bool removed;
        lock (_gate) removed = _recurring.Remove(name);
        if (removed) _signals?.Notify(QueueSignals.RecurringJobsChanged);
        return ValueTask.FromResult(removed);
    }

    /// <summary>A batch members may join: it exists and has not settled.</summary>
    private BatchEntry OpenBatch(long batchId, string parameterName)
    {
        if (!_batches.TryGetValue(batchId, out var batch)) throw new ArgumentException(BatchRules.NoSuchBatch(batchId), parameterName);
        if (batch.SettledAt is not null) throw new InvalidOperationException(BatchRules.AlreadySettled(batchId));
        return batch;
    }

    /// <summary>A member of a batch moved between states: its batch counts it (a callback is not a member), and settles when it was the last.</summary>
    private void CountInBatch(Entry entry, JobState from, DateTimeOffset now, HashSet<string>? notify)
    {
        if (entry.BatchId is not { } id || !_batches.TryGetValue(id, out var batch) || entry.Id == batch.OnSuccess || entry.Id == batch.OnComplete) return;
        batch.Counts = batch.Counts.Move(from, entry.State);
        SettleBatchIfDone(batch, now, notify ?? []);
    }

    /// <summary>
    /// A batch with no pending member settles, once: its on-complete callback is released, its on-success
    /// one too or cancelled (with its own dependents), and the batch counts as finished in its parent batch.
    /// </summary>
    private void SettleBatchIfDone(BatchEntry batch, DateTimeOffset now, HashSet<string> notify)
    {
        if (!BatchRules.Settles(batch.Counts, batch.SettledAt is not null)) return;
        batch.SettledAt = now;
        // A callback cancelled before its batch settled may have been purged since.
        if (batch.OnComplete is { } onComplete && _jobs.TryGetValue(onComplete, out var completeCallback)) ReleaseCallback(completeCallback, now, notify);
        if (batch.OnSuccess is { } onSuccess && _jobs.TryGetValue(onSuccess, out var callback))
        {
            if (BatchRules.SuccessCallbackRuns(batch.Counts)) ReleaseCallback(callback, now, notify);
            else if (callback.State == JobState.Waiting)
            {
                AddError(callback, new JobAttemptError(0, now, BatchRules.SuccessCallbackCancelled(batch.Id, batch.Counts)));
                callback.PendingParents = 0;
                Finish(callback, JobState.Cancelled, now, notify);
                Settle(callback, now, notify);
            }
        }

        if (batch.ParentId is { } parentId && _batches.TryGetValue(parentId, out var parent))
        {
            parent.Counts = parent.Counts.Move(JobState.Waiting, BatchRules.AsMember(batch.Counts));
            SettleBatchIfDone(parent, now, notify);
        }
    }

    /// <summary>A callback still waiting for its batch becomes due (one cancelled or expired meanwhile stays so).</summary>
    private void ReleaseCallback(Entry callback, DateTimeOffset now, HashSet<string> notify)
    {
        if (callback.State != JobState.Waiting) return;
        callback.PendingParents = 0;
        MakeReady(callback, callback.RunAt > now ? callback.RunAt : now);
        notify.Add(callback.Queue);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<AcquiredJob>> AcquireAsync(AcquireRequest request, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        JobValidation.ValidateAcquire(request);
        var acquired = new List<AcquiredJob>();
        lock (_gate)
        {
            var now = Clock.Now(_time);
            var shares = request.Queues;
            var quotas = shares.Count == 1 ? [request.MaxJobs] : FairShare.Quotas(shares, request.MaxJobs, _random);
            var taken = new List<Entry>();
            var spareCandidates = new List<(double Rank, Entry Entry)>();
            for (var q = 0; q < shares.Count; q++)
            {
                if (_paused.Contains(shares[q].Queue) || !_ready.TryGetValue(shares[q].Queue, out var ready)) continue;
                if (_limits.TryGetValue(shares[q].Queue, out var limited))
                {
                    // A limited queue takes at most its quota, by its limits; it competes for no spare share.
                    taken.AddRange(ClaimLimited(shares[q].Queue, ready, limited, quotas[q], now));
                    continue;
                }

                var fromQueue = 0;
                var extra = 0;
                foreach (var entry in ready)
                {
                    if (!IsDue(entry, now)) continue; // not yet due (scheduled), or past its latest start
                    if (request.Capacity is { } capacity && !capacity.Fits(entry.Allocation)) continue; // for a larger host
                    if (fromQueue < quotas[q])
                    {
                        taken.Add(entry);
                        fromQueue++;
                        continue;
                    }

                    // The queue filled its quota: its next jobs compete for what other queues leave.
                    if (extra == request.MaxJobs) break;
                    spareCandidates.Add((FairShare.SpareRank(++extra, shares[q].Weight), entry));
                }
            }

            var spare = request.MaxJobs - taken.Count;
            if (spare > 0) taken.AddRange(spareCandidates.OrderBy(c => c.Rank).ThenBy(c => c.Entry.Id).Take(spare).Select(c => c.Entry));
            taken.Sort(static (a, b) => JobOrder.Compare(a.SortRank, a.SortAt, a.Id, b.SortRank, b.SortAt, b.Id));
            if (request.Capacity is { } held)
            {
                var fit = ResourceCapacity.FittingPrefix(taken.ConvertAll(e => e.Allocation), request.Available ?? held);
                taken.RemoveRange(fit, taken.Count - fit);
            }

            foreach (var entry in taken)
            {
                _ready[entry.Queue].Remove(entry);
                entry.State = JobState.Running;
                entry.Attempt++;
                entry.LockedBy = request.WorkerId;
                entry.LeaseToken = Guid.NewGuid();
                entry.LeaseExpiresAt = now + request.LeaseDuration;
                entry.AttemptedAt = now;
                entry.Started = false; // until its host's heartbeat reports it running
                acquired.Add(new AcquiredJob
                {
                    Id = entry.Id, Queue = entry.Queue, Kind = entry.Kind, PayloadJson = entry.PayloadJson, Priority = entry.Priority,
                    RunAt = entry.RunAt, CreatedAt = entry.CreatedAt,
                    Lease = new JobLease(entry.Id, entry.LeaseToken.Value, entry.Attempt, entry.MaxAttempts), LeaseExpiresAt = entry.LeaseExpiresAt.Value,
                    Command = entry.Command, Allocation = entry.Allocation, TraceParent = entry.TraceParent, TraceState = entry.TraceState,
                    Timeout = entry.Timeout, Snoozes = entry.Snoozes, PayloadVersion = entry.PayloadVersion, BatchId = entry.BatchId,
                });
            }
        }

        return ValueTask.FromResult<IReadOnlyList<AcquiredJob>>(acquired);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<HeldLease>> HeartbeatAsync(string workerId, IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, IReadOnlyList<JobProgressUpdate>? progress = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        JobValidation.ValidateHeartbeat(workerId, leases, leaseDuration, progress);
        var reports = new Dictionary<JobLease, JobProgress>();
        foreach (var update in progress ?? []) reports[update.Lease] = update.Progress; // the last report of a lease wins
        var held = new List<HeldLease>();
        lock (_gate)
        {
            var expires = Clock.Now(_time) + leaseDuration;
            foreach (var lease in leases.Distinct()) // a job is held when any lease named for it is its live one
            {
                if (!_jobs.TryGetValue(lease.JobId, out var entry) || entry.State != JobState.Running || entry.LockedBy != workerId || entry.LeaseToken != lease.Token) continue;
                entry.LeaseExpiresAt = expires;
                entry.Started = true; // a heartbeat names the jobs its host runs: the attempt is now used
                if (reports.TryGetValue(lease, out var report)) entry.Progress = report with { ReportedAt = Clock.Now(_time) };
                held.Add(new HeldLease(entry.Id, lease.Token, entry.CancelRequested));
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
                if (!_jobs.TryGetValue(ack.Lease.JobId, out var entry) || entry.State != JobState.Running || entry.LeaseToken != ack.Lease.Token)
                {
                    results[i] = new AckResult(ack.Lease.JobId, false, null);
                    continue;
                }

                // A run is recorded only with its valid lease: once per attempt, never for a stale acknowledgement.
                if (JobValidation.ToOutcome(ack, entry.Allocation, entry.CommandHash, entry.NormalizedCommandHash, now) is { } outcome)
                    outcomes.Add(outcome);

                var error = ack.Kind == JobAckKind.Failed ? JobValidation.TrimError(ack.Error, _options) : null;
                var delay = RetryBackoff.AfterAcknowledgement(ack, _options.Retry, _random); // the lease's attempt is the entry's
                Apply(entry, JobTransitions.Acknowledge(Facts(entry), ack.Kind, error, ack.Retryable, now, delay, (short?)ack.Priority), now, notify);
                if (entry.State == JobState.Succeeded) entry.ResultJson = ack.ResultJson;
                if (ack.Progress is { } report) entry.Progress = report with { ReportedAt = now };
                results[i] = new AckResult(entry.Id, true, StateAt(entry, now));
            }

            // As PostgreSQL records a run in its acknowledgement's transaction: once a job is seen
            // finished, the next estimate of its command already learns from it.
            if (_history is InMemoryRunHistory local)
            {
                local.Record(outcomes);
                outcomes.Clear();
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
        var notify = new HashSet<string>(StringComparer.Ordinal);
        CancelOutcome outcome;
        lock (_gate)
        {
            if (!_jobs.TryGetValue(jobId, out var entry)) return ValueTask.FromResult(CancelOutcome.NotFound);
            var now = Clock.Now(_time);
            (outcome, var transition) = JobTransitions.Cancel(Facts(entry), now);
            if (outcome == CancelOutcome.CancellationRequested) entry.CancelRequested = true;
            if (transition is { } cancel)
            {
                if (entry.State == JobState.Available) _ready[entry.Queue].Remove(entry);
                var wasWaiting = entry.State == JobState.Waiting;
                entry.PendingParents = 0; // it waits for nothing now
                Apply(entry, cancel, now, notify);
                if (wasWaiting) LowerParents(entry);
            }
        }

        foreach (var queue in notify) _signals?.Notify(queue);
        return ValueTask.FromResult(outcome);
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
            foreach (var entry in _jobs.Values.Where(e => e.State == JobState.Running && e.LeaseExpiresAt < now).ToArray())
            {
                Apply(entry, JobTransitions.Rescue(Facts(entry), now), now, notify);
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
            if (!_jobs.TryGetValue(jobId, out var entry) || JobTransitions.Redrive(Facts(entry), Clock.Now(_time)) is not { } redrive) return ValueTask.FromResult(false);
            var activeKey = entry.UniqueKey is not null && entry.UniqueScope == UniqueKeyScope.Active;
            if (activeKey && _activeUniqueKeys.ContainsKey(entry.UniqueKey!)) return ValueTask.FromResult(false);
            Apply(entry, redrive, redrive.RunAt!.Value, null);
            TouchKey(entry);
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
            return ValueTask.FromResult(_jobs.TryGetValue(jobId, out var e) ? Info(e, Clock.Now(_time)) : null);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<JobInfo>> ListJobsAsync(JobListQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            var now = Clock.Now(_time);
            IReadOnlyList<JobInfo> page = _jobs.Values.Where(e => query.Matches(e.Id, e.Queue, e.Kind, StateAt(e, now), e.CreatedAt, e.UniqueKey, e.Errors)
                    && (query.ParentsOf is not { } child || e.ChildEdges.Exists(d => d.Child.Id == child)) && query.MatchesBatch(e.BatchId))
                .OrderByDescending(e => e.Id).Take(query.Limit).Select(e => Info(e, now)).ToArray();
            return ValueTask.FromResult(page);
        }
    }

    private static JobInfo Info(Entry e, DateTimeOffset now) => new()
    {
        Id = e.Id, Queue = e.Queue, Kind = e.Kind, PayloadJson = e.PayloadJson, State = StateAt(e, now), TraceParent = e.TraceParent,
        Priority = e.Priority, Attempt = e.Attempt, MaxAttempts = e.MaxAttempts, RunAt = e.RunAt, CreatedAt = e.CreatedAt,
        AttemptedAt = e.AttemptedAt, FinalizedAt = e.FinalizedAt, LockedBy = e.LockedBy, LeaseExpiresAt = e.LeaseExpiresAt,
        CancellationRequested = e.CancelRequested, UniqueKey = e.UniqueKey, Errors = e.Errors.ToArray(),
        Command = e.Command, CommandHash = e.CommandHash, Description = e.Description, Allocation = e.Allocation, Timeout = e.Timeout, Snoozes = e.Snoozes,
        PartitionKey = e.PartitionKey, LatestStartAt = e.LatestStartAt, ResultJson = e.ResultJson, Progress = e.Progress, PayloadVersion = e.PayloadVersion, BatchId = e.BatchId,
        EffectivePriority = e.EffectivePriority, PendingParents = e.PendingParents, OnParentFailure = e.OnParentFailure,
        Parents = e.ParentEdges.Select(d => new JobLink(d.Parent.Id, StateAt(d.Parent, now))).OrderBy(l => l.JobId).ToArray(),
        Children = e.ChildEdges.Select(d => new JobLink(d.Child.Id, StateAt(d.Child, now))).OrderBy(l => l.JobId).ToArray(),
    };

    private void CheckConflicts(List<PreparedJob> prepared)
    {
        foreach (var job in prepared)
        {
            if (job.UniqueKey is not null && job.OnUniqueConflict == UniqueKeyConflict.Reject && KeysOf(job.UniqueScope).TryGetValue(job.UniqueKey, out var existing))
                throw new DuplicateJobException(job.UniqueKey, existing);
        }
    }

    private EnqueueResult Insert(PreparedJob job, Entry[] parents, DateTimeOffset now)
    {
        if (job.UniqueKey is not null && KeysOf(job.UniqueScope).TryGetValue(job.UniqueKey, out var existing))
        {
            // The existing job keeps its own dependencies; replacing changes an unstarted one's payload and run-at.
            var holder = _jobs[existing];
            if (job.OnUniqueConflict != UniqueKeyConflict.Replace || holder.State is not (JobState.Available or JobState.Waiting)) return new EnqueueResult(existing, false);
            holder.PayloadJson = job.PayloadJson;
            if (job.RunAt is { } runAt)
            {
                var ready = holder.State == JobState.Available && _ready[holder.Queue].Remove(holder);
                holder.RunAt = runAt;
                Rekey(holder);
                if (ready) _ready[holder.Queue].Add(holder);
            }

            return new EnqueueResult(existing, false) { Replaced = true };
        }

        var (state, pending, failedParent, failedState) = DependencyRules.Initial(job, parents.Select(p => (p.Id, p.State)));
        var entry = new Entry
        {
            Id = _nextId++, Queue = job.Queue, Kind = job.Kind, PayloadJson = job.PayloadJson, Priority = job.Priority, EffectivePriority = job.Priority,
            AgingStepUs = JobOrder.StepMicroseconds(_options.AgingStep),
            DeadlineLeadUs = JobOrder.StepMicroseconds(_options.DeadlineLead),
            RunAt = job.RunAt ?? now, MaxAttempts = job.MaxAttempts, UniqueKey = job.UniqueKey, UniqueScope = job.UniqueScope, CreatedAt = now, State = state,
            PendingParents = pending, OnParentFailure = job.OnParentFailure,
            Command = job.Command, CommandHash = job.CommandHash, NormalizedCommandHash = job.NormalizedCommandHash, Description = job.Description, Allocation = job.Allocation,
            TraceParent = job.TraceParent, TraceState = job.TraceState, Timeout = job.Timeout,
            PartitionKey = job.PartitionKey, LatestStartAt = job.LatestStartAt, PayloadVersion = job.PayloadVersion, BatchId = job.BatchId,
        };
        _jobs.Add(entry.Id, entry);
        TouchKey(entry);
        foreach (var parent in parents)
        {
            var edge = new Edge(parent, entry) { Resolved = parent.State.IsTerminal() };
            parent.ChildEdges.Add(edge);
            entry.ParentEdges.Add(edge);
        }

        switch (state)
        {
            case JobState.Available:
                MakeReady(entry, entry.RunAt);
                break;
            case JobState.Cancelled:
                AddError(entry, new JobAttemptError(0, now, DependencyRules.CancelledBecause(failedParent, failedState)));
                entry.FinalizedAt = now;
                RecordFinish(entry.Queue, state, now);
                break;
            default: // waiting: its ancestors inherit its priority once the batch is written (EnqueueAsync)
                break;
        }

        if (entry.UniqueKey is not null && (entry.UniqueScope == UniqueKeyScope.AnyState || !state.IsTerminal())) KeysOf(entry.UniqueScope)[entry.UniqueKey] = entry.Id;
        return new EnqueueResult(entry.Id, true);
    }

    /// <summary>
    /// A job reached a terminal state: its waiting children count it as finished, each edge exactly
    /// once. A child whose last parent finished becomes available; a failed parent cancels children
    /// with the default policy, and their children in turn.
    /// </summary>
    private void Settle(Entry finished, DateTimeOffset now, HashSet<string> notify)
    {
        // Level by level, as the SQL does: each step resolves the edges of the jobs that finished in
        // the previous one, and a child counts them together (naming the failed parent with the smallest id).
        List<Entry> frontier = [finished];
        var cancelled = new List<Entry>();
        while (frontier.Count > 0)
        {
            var counted = new Dictionary<Entry, (int Resolved, Entry? Failed)>();
            foreach (var parent in frontier)
            {
                if (!parent.State.IsTerminal()) continue;
                foreach (var edge in parent.ChildEdges.Where(e => !e.Resolved))
                {
                    edge.Resolved = true;
                    var (resolved, failed) = counted.GetValueOrDefault(edge.Child);
                    if (parent.State != JobState.Succeeded && (failed is null || parent.Id < failed.Id)) failed = parent;
                    counted[edge.Child] = (resolved + 1, failed);
                }
            }

            frontier = [];
            foreach (var (child, (resolved, failed)) in counted)
            {
                if (child.State != JobState.Waiting) continue;
                if (failed is not null && DependencyRules.Cancels(failed.State, child.OnParentFailure))
                {
                    AddError(child, new JobAttemptError(0, now, DependencyRules.CancelledBecause(failed.Id, failed.State)));
                    child.PendingParents = 0; // it waits for nothing now
                    Finish(child, JobState.Cancelled, now, notify);
                    cancelled.Add(child);
                    frontier.Add(child);
                }
                else if ((child.PendingParents -= resolved) <= 0)
                {
                    child.PendingParents = 0;
                    MakeReady(child, child.RunAt > now ? child.RunAt : now); // due from when it could first run
                    notify.Add(child.Queue);
                }
            }
        }

        // Ancestors no longer waited on by a cancelled job lose the priority it lent them.
        foreach (var job in cancelled) LowerParents(job);
    }

    /// <summary>Raises a job's effective priority to at least <paramref name="priority"/>, and its unfinished ancestors' while it waits.</summary>
    private void Raise(Entry job, int priority)
    {
        // A walk stops at an ancestor already at this priority or above: its own ancestors are too.
        var pending = new Stack<Entry>();
        pending.Push(job);
        while (pending.TryPop(out var next))
        {
            if (next.State.IsTerminal() || next.EffectivePriority >= priority) continue;
            SetEffectivePriority(next, priority);
            if (next.State != JobState.Waiting) continue;
            foreach (var edge in next.ParentEdges.Where(d => !d.Resolved)) pending.Push(edge.Parent);
        }
    }

    private void LowerParents(Entry job)
    {
        foreach (var edge in job.ParentEdges.Where(d => !d.Resolved).ToArray()) Recompute(edge.Parent);
    }

    /// <summary>The highest effective priority of the children still waiting on <paramref name="job"/> (its own priority's floor: short.MinValue).</summary>
    private static int LentPriority(Entry job) =>
        job.ChildEdges.Where(e => !e.Resolved && e.Child.State == JobState.Waiting).Select(e => e.Child.EffectivePriority).DefaultIfEmpty(short.MinValue).Max();

    /// <summary>Effective priority = max(own, effective priority of every child still waiting on it).</summary>
    private void Recompute(Entry job)
    {
        if (job.State.IsTerminal()) return;
        var effective = Math.Max(job.Priority, LentPriority(job));

        if (effective == job.EffectivePriority) return;
        SetEffectivePriority(job, effective);
        if (job.State == JobState.Waiting) LowerParents(job);
    }

    private void SetEffectivePriority(Entry job, int priority)
    {
        var ready = job.State == JobState.Available && _ready[job.Queue].Remove(job);
        job.EffectivePriority = priority;
        Rekey(job);
        if (ready) _ready[job.Queue].Add(job);
    }

    /// <inheritdoc />
    public ValueTask<int> PurgeFinishedAsync(TimeSpan olderThan, int batchSize, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(olderThan, TimeSpan.Zero);
        lock (_gate)
        {
            var finishedBefore = Clock.Now(_time) - olderThan;
            var old = _jobs.Values.Where(e => e.State.IsTerminal() && e.FinalizedAt < finishedBefore).Take(batchSize).ToList();
            foreach (var entry in old)
            {
                _jobs.Remove(entry.Id);
                foreach (var edge in entry.ParentEdges) edge.Parent.ChildEdges.Remove(edge);
                foreach (var edge in entry.ChildEdges) edge.Child.ParentEdges.Remove(edge);
                if (entry.UniqueKey is not null && entry.UniqueScope == UniqueKeyScope.AnyState && _permanentUniqueKeys.TryGetValue(entry.UniqueKey, out var holder) && holder == entry.Id)
                    _permanentUniqueKeys.Remove(entry.UniqueKey);
            }

            // A batch settled before the cutoff goes once none of its jobs is left (SQL twin: Retention.Purge).
            var withJobs = _jobs.Values.Where(e => e.BatchId is not null).Select(e => e.BatchId!.Value).ToHashSet();
            foreach (var batch in _batches.Values.Where(b => b.SettledAt < finishedBefore && !withJobs.Contains(b.Id)).Take(batchSize).ToArray()) _batches.Remove(batch.Id);
            return ValueTask.FromResult(old.Count);
        }
    }

    /// <inheritdoc />
    public ValueTask ReportHostAsync(WorkerHostInfo host, TimeSpan expiresAfter, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateHostReport(host, expiresAfter);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            var now = Clock.Now(_time);
            var startedAt = _hosts.TryGetValue(host.WorkerId, out var known) && known.ExpiresAt > now ? known.StartedAt : now;
            var capacity = host.Capacity is { MemoryMb: null, CpuMillicores: null, Gpus: null } ? null : host.Capacity; // unlimited either way
            _hosts[host.WorkerId] = host with { Queues = host.Queues.ToArray(), Capacity = capacity, StartedAt = startedAt, SeenAt = now, ExpiresAt = now + expiresAfter };
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveHostAsync(string workerId, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateWorkerId(workerId, nameof(workerId));
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate) return ValueTask.FromResult(_hosts.Remove(workerId));
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<WorkerHostInfo>> ListHostsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate) return ValueTask.FromResult<IReadOnlyList<WorkerHostInfo>>(LiveHosts(Clock.Now(_time)));
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<QueueActivity>> GetActivityAsync(TimeSpan window, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateActivityWindow(window);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            var since = QueueActivityMinute(Clock.Now(_time) - window);
            return ValueTask.FromResult<IReadOnlyList<QueueActivity>>(_activity
                .Where(a => a.Key.Minute >= since)
                .OrderBy(a => a.Key.Minute).ThenBy(a => a.Key.Queue, StringComparer.Ordinal)
                .Select(a => new QueueActivity(a.Key.Queue, a.Key.Minute, a.Value.Succeeded, a.Value.Dead, a.Value.Cancelled))
                .ToArray());
        }
    }

    /// <summary>
    /// A finish, as an event of its minute: a dead job retried later still died then, and purging finished
    /// jobs leaves the counts. Kept for the longest window (a day). SQL twin: the job_activity rows that
    /// count_job_changes and fold_job_counts write (migration 0022).
    /// </summary>
    private void RecordFinish(string queue, JobState state, DateTimeOffset at)
    {
        var key = (queue, QueueActivityMinute(at));
        if (!_activity.TryGetValue(key, out var counts))
        {
            // A new minute: the place to drop the ones no window reaches any more.
            var oldest = key.Item2 - TimeSpan.FromDays(1) - TimeSpan.FromMinutes(1);
            foreach (var stale in _activity.Keys.Where(k => k.Minute < oldest).ToArray()) _activity.Remove(stale);
        }

        _activity[key] = state switch
        {
            JobState.Succeeded => counts with { Succeeded = counts.Succeeded + 1 },
            JobState.Dead => counts with { Dead = counts.Dead + 1 },
            _ => counts with { Cancelled = counts.Cancelled + 1 },
        };
    }

    /// <inheritdoc />
    public ValueTask<long?> CountAheadAsync(long jobId, int cap = 10_000, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateCountCap(cap);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            var now = Clock.Now(_time);
            if (!_jobs.TryGetValue(jobId, out var job) || job.State != JobState.Available || !IsDue(job, now)) return ValueTask.FromResult<long?>(null);
            var ready = ReadySet(job.Queue);
            long ahead = 0;
            foreach (var other in ready)
            {
                if (ReferenceEquals(other, job) || ahead >= cap) break; // the set is in acquisition order
                if (IsDue(other, now)) ahead++;
            }

            return ValueTask.FromResult<long?>(ahead);
        }
    }

    private static DateTimeOffset QueueActivityMinute(DateTimeOffset at) => new(at.UtcTicks - at.UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero);

    private WorkerHostInfo[] LiveHosts(DateTimeOffset now) => _hosts.Values.Where(h => h.ExpiresAt > now).ToArray();

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<QueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            var now = Clock.Now(_time);
            var hosts = LiveHosts(now);
            var active = _jobs.Values.Where(e => e.State is JobState.Available or JobState.Running or JobState.Waiting).ToLookup(e => e.Queue, StringComparer.Ordinal);
            return ValueTask.FromResult<IReadOnlyList<QueueStats>>(active.Select(g => g.Key).Union(_paused).Union(_limits.Keys)
                .Order(StringComparer.Ordinal)
                .Select(queue =>
                {
                    var jobs = active[queue];
                    return new QueueStats(queue,
                        jobs.LongCount(e => e.State == JobState.Available && e.RunAt <= now),
                        jobs.LongCount(e => e.State == JobState.Available && e.RunAt > now),
                        jobs.LongCount(e => e.State == JobState.Running),
                        jobs.Where(e => e.State == JobState.Available && e.RunAt <= now).Select(e => (DateTimeOffset?)e.RunAt).Min())
                    {
                        Waiting = jobs.LongCount(e => e.State == JobState.Waiting),
                        Hosts = hosts.Count(h => h.Serves(queue)),
                        Oversized = jobs.LongCount(e => e.State is JobState.Available or JobState.Waiting && WorkerHostInfo.FitsNone(e.Allocation, queue, hosts)),
                        ReadAt = now,
                        Paused = _paused.Contains(queue),
                        Limits = _limits.TryGetValue(queue, out var limited) ? limited.Limits : QueueLimits.None,
                    };
                })
                .ToArray());
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> PauseQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateQueueName(queue, nameof(queue));
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate) return ValueTask.FromResult(_paused.Add(queue));
    }

    /// <inheritdoc />
    public ValueTask<bool> ResumeQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateQueueName(queue, nameof(queue));
        cancellationToken.ThrowIfCancellationRequested();
        bool resumed;
        lock (_gate) resumed = _paused.Remove(queue);
        if (resumed) _signals?.Notify(queue);
        return ValueTask.FromResult(resumed);
    }

    /// <inheritdoc />
    public ValueTask<QueueLimits> SetQueueLimitsAsync(string queue, QueueLimits limits, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateQueueName(queue, nameof(queue));
        JobValidation.ValidateQueueLimits(limits, nameof(limits));
        cancellationToken.ThrowIfCancellationRequested();
        QueueLimitState? old;
        lock (_gate)
        {
            // A changed rate starts its bucket full again (its old timestamp was paced for the old rate).
            old = _limits.GetValueOrDefault(queue);
            if (old is not null && old.Limits.RatePerKey != limits.RatePerKey && _keys.TryGetValue(queue, out var keys))
                foreach (var key in keys.Values) key.Tat = null;
            if (!limits.IsLimited) _limits.Remove(queue);
            else _limits[queue] = new QueueLimitState { Limits = limits, Tat = old is not null && old.Limits.Rate == limits.Rate ? old.Tat : null };
        }

        _signals?.Notify(queue);
        return ValueTask.FromResult(old?.Limits ?? QueueLimits.None);
    }

    /// <inheritdoc />
    public ValueTask<int> ExpireOverdueAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var notify = new HashSet<string>(StringComparer.Ordinal);
        var expired = 0;
        lock (_gate)
        {
            var now = Clock.Now(_time);
            foreach (var entry in _jobs.Values.Where(e => e.LatestStartAt < now && e.State is JobState.Waiting or JobState.Available).OrderBy(e => e.Id).ToArray())
            {
                if (JobTransitions.Expire(Facts(entry), entry.LatestStartAt, now) is not { } expire) continue;
                if (entry.State == JobState.Available) _ready[entry.Queue].Remove(entry);
                var wasWaiting = entry.State == JobState.Waiting;
                entry.PendingParents = 0;
                Apply(entry, expire, now, notify);
                if (wasWaiting) LowerParents(entry);
                expired++;
            }
        }

        foreach (var queue in notify) _signals?.Notify(queue);
        return ValueTask.FromResult(expired);
    }

    /// <summary>Due now, and not past its latest start (the claim's filter; expiry makes it visible later).</summary>
    private static bool IsDue(Entry entry, DateTimeOffset now) => entry.RunAt <= now && !(entry.LatestStartAt < now);

    /// <summary>A keyed job's key is registered while the key has active jobs (SQL twin: the enqueue's upsert into queue_keys).</summary>
    private void TouchKey(Entry entry)
    {
        if (entry.PartitionKey is null || entry.State.IsTerminal()) return;
        if (!_keys.TryGetValue(entry.Queue, out var keys)) _keys[entry.Queue] = keys = new(StringComparer.Ordinal);
        keys.TryAdd(entry.PartitionKey, new KeyState());
    }

    /// <summary>
    /// The claim of a limited queue (SQL twin: claim_limited): the queue's bucket bounds the batch;
    /// without per-key controls, due jobs in queue order; with them, the least recently visited keys
    /// (and the unkeyed jobs among the first due ones, as one more key), each allowed what its cap and
    /// bucket leave, dealt in equal shares pass after pass until the batch is full or no key can give more.
    /// </summary>
    private List<Entry> ClaimLimited(string queue, SortedSet<Entry> ready, QueueLimitState state, int maxJobs, DateTimeOffset now)
    {
        var limits = state.Limits;
        var want = limits.Rate is { } rate ? Math.Min(maxJobs, RateAllowance.Allowed(state.Tat, now, rate)) : maxJobs;
        var picked = new List<Entry>();
        if (want <= 0) return picked;
        if (!limits.IsKeyed)
        {
            picked.AddRange(ready.Where(e => IsDue(e, now)).Take(want));
        }
        else
        {
            var scan = LimitedClaim.KeysVisited(maxJobs);
            var keys = _keys.GetValueOrDefault(queue) ?? [];
            var visited = keys.OrderBy(k => k.Value.VisitedAt.HasValue).ThenBy(k => k.Value.VisitedAt).ThenBy(k => k.Key, StringComparer.Ordinal).Take(scan).ToList();
            var slots = new List<(string? Key, int Allowed)>(visited.Count + 1);
            // Unkeyed jobs: one more key, from among the first due jobs only (a bounded look), never capped per key.
            var unkeyed = ready.Where(e => IsDue(e, now)).Take(scan).Where(e => e.PartitionKey is null).ToList();
            if (unkeyed.Count > 0) slots.Add((null, want));
            foreach (var (key, keyState) in visited)
            {
                var allowed = want;
                if (limits.ConcurrencyPerKey is { } cap)
                    allowed = Math.Min(allowed, cap - _jobs.Values.Count(e => e.State == JobState.Running && e.Queue == queue && e.PartitionKey == key));
                if (limits.RatePerKey is { } keyRate) allowed = Math.Min(allowed, RateAllowance.Allowed(keyState.Tat, now, keyRate));
                slots.Add((key, Math.Max(allowed, 0)));
            }

            var (taken, dealt) = LimitedClaim.Deal(want, slots.Select(s => s.Allowed).ToArray(), (slot, n, already) =>
            {
                var source = slots[slot].Key is { } key ? ready.Where(e => e.PartitionKey == key && IsDue(e, now)) : unkeyed;
                var jobs = source.Skip(already).Take(n).ToList();
                picked.AddRange(jobs);
                return jobs.Count;
            });

            for (var i = 0; i < slots.Count; i++)
            {
                if (slots[i].Key is not { } key || !dealt[i]) continue;
                var keyState = keys[key];
                keyState.VisitedAt = now;
                if (limits.RatePerKey is { } keyRate && taken[i] > 0) keyState.Tat = RateAllowance.Spend(keyState.Tat, now, keyRate, taken[i]);
                // A key with no active job left is forgotten (re-registered by its next enqueue).
                if (taken[i] == 0 && !_jobs.Values.Any(e => e.Queue == queue && e.PartitionKey == key && e.State is JobState.Waiting or JobState.Available or JobState.Running))
                    keys.Remove(key);
            }
        }

        if (limits.Rate is { } queueRate && picked.Count > 0) state.Tat = RateAllowance.Spend(state.Tat, now, queueRate, picked.Count);
        return picked;
    }

    private Dictionary<string, long> KeysOf(UniqueKeyScope scope) => scope == UniqueKeyScope.AnyState ? _permanentUniqueKeys : _activeUniqueKeys;

    private SortedSet<Entry> ReadySet(string queue)
    {
        if (!_ready.TryGetValue(queue, out var set))
        {
            set = new SortedSet<Entry>(Comparer<Entry>.Create(static (a, b) => JobOrder.Compare(a.SortRank, a.SortAt, a.Id, b.SortRank, b.SortAt, b.Id)));
            _ready.Add(queue, set);
        }

        return set;
    }

    private void MakeReady(Entry entry, DateTimeOffset runAt)
    {
        ClearLease(entry);
        var from = entry.State;
        entry.State = JobState.Available;
        if (from.IsTerminal()) CountInBatch(entry, from, runAt, null); // a redriven member is pending again
        entry.RunAt = runAt;
        Rekey(entry);
        ReadySet(entry.Queue).Add(entry);
    }

    private static JobFacts Facts(Entry entry) => new(entry.State, entry.Attempt, entry.MaxAttempts, entry.CancelRequested, entry.LockedBy, entry.Started, entry.UnstartedRescues, entry.Snoozes);

    /// <summary>Writes a decided transition; a job that finished settles its waiting children.</summary>
    private void Apply(Entry entry, JobTransition transition, DateTimeOffset now, HashSet<string>? notify)
    {
        if (transition.Error is { } error) AddError(entry, error);
        entry.Attempt = transition.ResetsAttempts ? 0 : entry.Attempt + transition.AttemptChange;
        if (transition.CountsUnstartedRescue) entry.UnstartedRescues++;
        if (transition.CountsSnooze) entry.Snoozes++;
        if (transition.State == JobState.Available)
        {
            if (transition.Priority is { } priority)
            {
                // A new own priority; waiting children still lend theirs (SQL twin: SetStatesIfRunning's priority shape).
                entry.Priority = priority;
                entry.EffectivePriority = Math.Max(priority, LentPriority(entry));
            }

            entry.FinalizedAt = null;
            MakeReady(entry, transition.RunAt ?? entry.RunAt);
            if (transition.IsDueAt(now)) notify?.Add(entry.Queue);
            return;
        }

        Finish(entry, transition.State, transition.FinalizedAt ?? now, notify);
        if (notify is not null) Settle(entry, now, notify);
    }

    private void Finish(Entry entry, JobState state, DateTimeOffset now, HashSet<string>? notify)
    {
        ClearLease(entry);
        var from = entry.State;
        entry.State = state;
        entry.FinalizedAt = now;
        if (from != state) RecordFinish(entry.Queue, state, now);
        CountInBatch(entry, from, now, notify);
        if (entry.UniqueKey is not null && entry.UniqueScope == UniqueKeyScope.Active && _activeUniqueKeys.TryGetValue(entry.UniqueKey, out var holder) && holder == entry.Id)
            _activeUniqueKeys.Remove(entry.UniqueKey);
    }

    /// <summary>The ordering key from run-at, effective priority and aging step: set whenever one of them changes.</summary>
    private static void Rekey(Entry entry)
    {
        entry.SortRank = JobOrder.Rank(entry.EffectivePriority, entry.AgingStepUs);
        entry.SortAt = JobOrder.At(entry.RunAt, entry.EffectivePriority, entry.AgingStepUs, entry.LatestStartAt, entry.DeadlineLeadUs);
    }

    private static void ClearLease(Entry entry)
    {
        entry.LockedBy = null;
        entry.LeaseToken = null;
        entry.LeaseExpiresAt = null;
    }

    private void AddError(Entry entry, JobAttemptError error)
    {
        entry.Errors.Add(error);
        while (entry.Errors.Count > _options.MaxErrorsKept) entry.Errors.RemoveAt(0);
    }

    private static JobState StateAt(Entry entry, DateTimeOffset now) => JobTransitions.Visible(entry.State, entry.RunAt, now);

    private sealed class QueueLimitState
    {
        public required QueueLimits Limits;
        public DateTimeOffset? Tat;
    }

    private sealed class KeyState
    {
        public DateTimeOffset? VisitedAt;
        public DateTimeOffset? Tat;
    }

    private sealed class Entry
    {
        public long Id;
        public string Queue = "";
        public string Kind = "";
        public string? PayloadJson;
        public int Priority;
        public int EffectivePriority;
        public long? AgingStepUs;
        public long? DeadlineLeadUs;
        public short SortRank;
        public DateTimeOffset SortAt;
        public int PendingParents;
        public ParentFailurePolicy OnParentFailure;
        public readonly List<Edge> ParentEdges = [];
        public readonly List<Edge> ChildEdges = [];
        public DateTimeOffset RunAt;
        public int MaxAttempts;
        public string? UniqueKey;
        public UniqueKeyScope UniqueScope;
        public DateTimeOffset CreatedAt;
        public JobState State;
        public int Attempt;
        public string? LockedBy;
        public Guid? LeaseToken;
        public bool Started = true;
        public int UnstartedRescues;
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
        public TimeSpan? Timeout;
        public int Snoozes;
        public string? PartitionKey;
        public DateTimeOffset? LatestStartAt;
        public string? ResultJson;
        public int PayloadVersion;
        public JobProgress? Progress;
        public long? BatchId;
        public readonly List<JobAttemptError> Errors = [];
    }

    private sealed class BatchEntry
    {
        public long Id;
        public long? ParentId;
        public BatchCounts Counts;
        public long? OnSuccess;
        public long? OnComplete;
        public DateTimeOffset CreatedAt;
        public DateTimeOffset? SettledAt;
    }

    /// <summary>A dependency; resolved once its parent has finished and the child has counted it.</summary>
    private sealed class Edge(Entry parent, Entry child)
    {
        public Entry Parent { get; } = parent;
        public Entry Child { get; } = child;
        public bool Resolved { get; set; }
    }
}
