using Npgsql;
using NpgsqlTypes;
using Scheduling.Postgres.Statements;

namespace Scheduling.Postgres;

/// <summary>
/// The PostgreSQL <see cref="IJobQueue"/>: batch acquisition with <c>FOR UPDATE SKIP LOCKED</c>,
/// leases fenced by a token, batched acknowledgements, binary COPY for bulk enqueue, and NOTIFY
/// in the enqueueing transaction. Safe to share across threads; hold one per schema.
/// </summary>
public sealed class PostgresJobQueue : IJobQueue, IJobWorkerStore, IRecurringJobStore, IAraReportSource
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresQueueOptions _options;
    private readonly JobQueueOptions _rules;
    private readonly StatementClock _clock;
    private readonly Random _random;
    private readonly PostgresSchema _schema;
    private readonly AcquireJobs _acquire;
    private readonly PostgresJobWriter _writer;
    private readonly ReadJob _read;
    private readonly QueueControl _queueControl;
    private readonly Heartbeat _heartbeat;
    private readonly RescueCandidates _rescue;
    private readonly ExpireOverdue _expire;
    private readonly EnqueueJobs _enqueue;
    private readonly Dependencies _dependencies;
    private readonly Retention _retention;
    private readonly PostgresMigrator _migrator;
    private readonly ResourceAllocator? _allocator;
    private readonly MigrationGate _migrations;
    private readonly SetStatesIfRunning _setStates;
    private readonly OneJobTransition _oneJob;
    private readonly Batches _batches;
    private readonly RecurringJobs _recurring;
    private readonly Hosts _hosts;

    /// <summary>Creates a queue over a data source.</summary>
    /// <param name="dataSource">Where the jobs live; owned by the caller.</param>
    /// <param name="options">Store settings; defaults when null.</param>
    /// <param name="rules">Validation and retry rules; defaults when null.</param>
    /// <param name="timeProvider">The clock used when <see cref="PostgresQueueOptions.UseDatabaseClock"/> is false.</param>
    /// <param name="allocator">Sizes jobs that name a definition (ARA); without it they get their baseline.</param>
    public PostgresJobQueue(NpgsqlDataSource dataSource, PostgresQueueOptions? options = null, JobQueueOptions? rules = null, TimeProvider? timeProvider = null, ResourceAllocator? allocator = null)
        : this(dataSource, options, rules, timeProvider, null, allocator)
    {
    }

    internal PostgresJobQueue(NpgsqlDataSource dataSource, PostgresQueueOptions? options, JobQueueOptions? rules, TimeProvider? timeProvider, Random? random, ResourceAllocator? allocator = null)
    {
        _allocator = allocator;
        ArgumentNullException.ThrowIfNull(dataSource);
        _dataSource = dataSource;
        _options = options ?? new PostgresQueueOptions();
        _rules = rules ?? new JobQueueOptions();
        JobValidation.ValidateOptions(_rules, nameof(rules));
        _clock = new StatementClock(timeProvider ?? TimeProvider.System, _options.UseDatabaseClock);
        _random = random ?? Random.Shared;
        _schema = new PostgresSchema(_options.Schema, "options.Schema");
        _acquire = new AcquireJobs(_schema);
        _read = new ReadJob(_schema);
        _queueControl = new QueueControl(_schema);
        _heartbeat = new Heartbeat(_schema);
        _rescue = new RescueCandidates(_schema);
        _expire = new ExpireOverdue(_schema);
        _dependencies = new Dependencies(_schema);
        _enqueue = new EnqueueJobs(_schema, JobOrder.StepMicroseconds(_rules.AgingStep), JobOrder.StepMicroseconds(_rules.DeadlineLead));
        _writer = new PostgresJobWriter(dataSource, _options, _schema, _enqueue, _dependencies, _clock);
        _retention = new Retention(_schema);
        _hosts = new Hosts(_schema);
        _setStates = new SetStatesIfRunning(_schema);
        _oneJob = new OneJobTransition(_schema);
        _batches = new Batches(_schema);
        _recurring = new RecurringJobs(_schema);
        _migrator = new PostgresMigrator(dataSource, _schema);
        _migrations = new MigrationGate(_migrator, _options.ApplyMigrations);
    }

    /// <summary>The schema holding the tables.</summary>
    public string Schema => _schema.Name;

    /// <summary>The NOTIFY channel announcing new work (the queue name is the payload).</summary>
    public string NotificationChannel => _schema.NotificationChannel;

    /// <summary>This queue's enqueue wake-ups (null when enqueues do not notify), for tests.</summary>
    internal Notifications.WakeCoalescer? Wakes => _writer.Wakes;

    /// <summary>Applies pending migrations now; idempotent and safe to run from many hosts at once.</summary>
    /// <returns>The migration versions this call applied.</returns>
    public async Task<IReadOnlyList<int>> MigrateAsync(CancellationToken cancellationToken = default)
    {
        var applied = await _migrator.MigrateAsync(cancellationToken).ConfigureAwait(false);
        _migrations.MarkDone();
        return applied;
    }

    /// <summary>For a host that does not migrate: connects and checks that the schema is one this library can serve (as its first use would).</summary>
    internal ValueTask VerifySchemaAsync(CancellationToken cancellationToken) => EnsureMigratedAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default) =>
        (await EnqueueCallAsync([request], one: true, null, cancellationToken).ConfigureAwait(false))[0];

    /// <summary>Enqueues one job inside the caller's transaction: it becomes visible (and wakes workers) only if that transaction commits.</summary>
    public async ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        return (await EnqueueCallAsync([request], one: true, transaction, cancellationToken).ConfigureAwait(false))[0];
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default) =>
        EnqueueCallAsync(requests, one: false, null, cancellationToken);

    /// <summary>Enqueues many jobs inside the caller's transaction (all or none, with it).</summary>
    public ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        return EnqueueCallAsync(requests, one: false, transaction, cancellationToken);
    }

    /// <summary>
    /// Every plain enqueue: through the enqueue middleware, then validated (<paramref name="one"/>: named
    /// as a single request), sized, and written in <paramref name="transaction"/> or a transaction of its own.
    /// </summary>
    private ValueTask<IReadOnlyList<EnqueueResult>> EnqueueCallAsync(IReadOnlyList<JobRequest> requests, bool one, NpgsqlTransaction? transaction, CancellationToken cancellationToken) =>
        EnqueuePipeline.RunAsync(requests, _rules, async written =>
        {
            var prepared = one ? JobValidation.PrepareOne(written[0], _rules) : JobValidation.PrepareAll(written, _rules);
            if (prepared.Jobs.Count == 0) return [];
            await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
            await JobValidation.AllocateAsync(prepared.Jobs, _allocator, cancellationToken).ConfigureAwait(false);
            return transaction is null
                ? await _writer.InsertOwnTransactionAsync(prepared, cancellationToken).ConfigureAwait(false)
                : await _writer.InsertInCallersTransactionAsync(ConnectionOf(transaction), transaction, prepared, cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    /// <inheritdoc />
    public ValueTask<BatchResult> EnqueueBatchAsync(BatchRequest batch, CancellationToken cancellationToken = default) =>
        EnqueuePipeline.RunBatchAsync(batch, _rules, written => WriteBatchAsync(written, cancellationToken), cancellationToken);

    private async ValueTask<BatchResult> WriteBatchAsync(BatchRequest batch, CancellationToken cancellationToken)
    {
        var prepared = JobValidation.PrepareBatch(batch, _rules);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await JobValidation.AllocateAsync(prepared.Jobs.Jobs, _allocator, cancellationToken).ConfigureAwait(false);
        return await _writer.WakingAsync(prepared.Jobs.Jobs, wake => _writer.InOwnTransactionAsync(async (connection, transaction) =>
        {
            var now = _clock.WriteNow();
            if (await _batches.CreateAsync(connection, transaction, prepared.ParentBatchId, now, cancellationToken).ConfigureAwait(false) is not { } id)
                throw Batches.NotOpen(prepared.ParentBatchId!.Value, await _batches.SettledAsync(connection, transaction, prepared.ParentBatchId.Value, lockRow: false, cancellationToken).ConfigureAwait(false), "batch.ParentBatchId");
            var written = await _writer.InsertAsync(connection, transaction, prepared.For(id), wake, cancellationToken).ConfigureAwait(false); // members and callbacks, one call
            var (onSuccess, onComplete) = prepared.CallbackIds(written);
            await _batches.CountAsync(connection, transaction, id, prepared.Members(written), onSuccess, onComplete, now, _schema.NotificationChannel, cancellationToken).ConfigureAwait(false);
            return prepared.Result(id, written);
        }, retryDeadlocks: true, cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<EnqueueResult>> AddToBatchAsync(long batchId, IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken = default)
    {
        BatchRules.ValidateAdd(batchId, jobs);
        return EnqueuePipeline.RunAsync(jobs, _rules, written => AddToBatchCoreAsync(batchId, written, cancellationToken), cancellationToken);
    }

    private async ValueTask<IReadOnlyList<EnqueueResult>> AddToBatchCoreAsync(long batchId, IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken)
    {
        var prepared = JobValidation.PrepareAll(jobs, _rules).InBatch(batchId);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await JobValidation.AllocateAsync(prepared.Jobs, _allocator, cancellationToken).ConfigureAwait(false);
        return await _writer.WakingAsync(prepared.Jobs, wake => _writer.InOwnTransactionAsync(async (connection, transaction) =>
        {
            // Locked first: the batch cannot settle until this transaction's members are counted.
            if (await _batches.SettledAsync(connection, transaction, batchId, lockRow: true, cancellationToken).ConfigureAwait(false) is not false and var settled)
                throw Batches.NotOpen(batchId, settled, nameof(batchId));
            var members = await _writer.InsertAsync(connection, transaction, prepared, wake, cancellationToken).ConfigureAwait(false);
            await _batches.CountAsync(connection, transaction, batchId, members, null, null, _clock.WriteNow(), _schema.NotificationChannel, cancellationToken).ConfigureAwait(false);
            return (IReadOnlyList<EnqueueResult>)members;
        }, retryDeadlocks: true, cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<BatchInfo?> GetBatchAsync(long batchId, CancellationToken cancellationToken = default)
    {
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        return await _batches.ReadAsync(_dataSource, batchId, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<RecurringJobDefinition>> ListRecurringJobsAsync(CancellationToken cancellationToken = default)
    {
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(_recurring.List);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await RecurringJobs.ReadAllAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> SaveRecurringJobAsync(RecurringJobDefinition job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _recurring.SaveCommand(_dataSource, job, _clock.WriteNow(), _schema.NotificationChannel);
        return (bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public async ValueTask<bool> SetRecurringJobPausedAsync(string name, bool paused, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _recurring.SetPausedCommand(_dataSource, name, paused, _clock.WriteNow(), _schema.NotificationChannel);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
    }

    /// <inheritdoc />
    public async ValueTask<bool> RemoveRecurringJobAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _recurring.RemoveCommand(_dataSource, name, _schema.NotificationChannel);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AcquiredJob>> AcquireAsync(AcquireRequest request, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateAcquire(request);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = _dataSource.CreateBatch();
        batch.BatchCommands.Add(_acquire.Command(request, _random, _clock.WriteNow()));
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await AcquireJobs.ReadAsync(reader, request.MaxJobs, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Applies the acknowledgements and acquires, in one round trip and one transaction: a worker that
    /// finishes a job and wants the next pays one commit instead of two.
    /// </summary>
    public async ValueTask<AcknowledgeAndAcquireResult> AcknowledgeAndAcquireAsync(IReadOnlyList<JobAck> acks, AcquireRequest request, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateAcks(acks);
        JobValidation.ValidateAcquire(request);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        return await DeadlockRetry.RunAsync(async () =>
        {
            await using var batch = _dataSource.CreateBatch();
            // A slot acknowledging its own job and taking the next: if another transaction holds the row,
            // only this slot waits (and its write then wins the row before any rescuer), so no lock timeout.
            AddAckCommands(batch, acks, lockTimeout: false);
            batch.BatchCommands.Add(_acquire.Command(request, _random, _clock.WriteNow()));
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var acknowledged = await ReadAckResultsAsync(reader, acks, lockTimeout: false, cancellationToken).ConfigureAwait(false);
            return new AcknowledgeAndAcquireResult(acknowledged, await AcquireJobs.ReadAsync(reader, request.MaxJobs, cancellationToken).ConfigureAwait(false));
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<HeldLease>> HeartbeatAsync(string workerId, IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, IReadOnlyList<JobProgressUpdate>? progress = null, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateHeartbeat(workerId, leases, leaseDuration, progress);
        if (leases.Count == 0) return [];
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _heartbeat.Command(_dataSource, workerId, leases, leaseDuration, _clock.WriteNow(), progress);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await Heartbeat.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AckResult>> AcknowledgeAsync(IReadOnlyList<JobAck> acks, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateAcks(acks);
        if (acks.Count == 0) return [];
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        return await DeadlockRetry.RunAsync(async () =>
        {
            await using var batch = _dataSource.CreateBatch(); // one round trip for the whole batch
            AddAckCommands(batch, acks, lockTimeout: true);
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await ReadAckResultsAsync(reader, acks, lockTimeout: true, cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Completes the running job of <paramref name="context"/> inside the handler's own
    /// <paramref name="transaction"/>, fenced by its lease: its effects in this database and its
    /// completion (with the result it set, its children released) commit together or not at all. If
    /// the lease is no longer held (the job was rescued and may run elsewhere, or was cancelled or
    /// finished), nothing is written and <see cref="JobLeaseLostException"/> is thrown: roll the
    /// transaction back. Call it last, just before committing; see <c>docs/handlers.md</c>.
    /// </summary>
    /// <exception cref="JobLeaseLostException">The job's lease is no longer held.</exception>
    public async Task CompleteWithinAsync<TPayload>(JobContext<TPayload> context, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var connection = ConnectionOf(transaction);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var ack = JobAck.Success(context.Job.Lease) with { ResultJson = context.Output.ResultJson };
        await using var batch = new NpgsqlBatch(connection, transaction);
        AddAckCommands(batch, [ack], lockTimeout: false); // the caller's transaction keeps its own lock timeout
        AckResult[] results;
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            results = await ReadAckResultsAsync(reader, [ack], lockTimeout: false, cancellationToken).ConfigureAwait(false);
        if (!results[0].Applied) throw new JobLeaseLostException(context.Job.Id);
        context.Output.MarkCompletedInTransaction();
    }

    /// <summary>Adds the statements that apply <paramref name="acks"/> (none for none).</summary>
    private void AddAckCommands(NpgsqlBatch batch, IReadOnlyList<JobAck> acks, bool lockTimeout)
    {
        if (acks.Count == 0) return;
        // A lease acknowledged twice in one batch: the first acknowledgement is the one written, as in
        // memory (an UPDATE joined to two rows of one lease would apply either, and record two runs).
        // Acknowledgements of other leases of the job are stale: the token match leaves them out.
        if (acks.Count > 1 && acks.DistinctBy(a => (a.Lease.JobId, a.Lease.Token)).ToArray() is { } once && once.Length < acks.Count) acks = once;
        var first = batch.BatchCommands.Count;
        // Decided above the store: the lease carries the attempt and its limit; whether cancellation
        // was requested meanwhile only the row knows, so a transition that depends on it is sent for both.
        var decidedAt = _clock.Now();
        var rows = new List<TransitionRow>(acks.Count);
        foreach (var ack in acks)
        {
            var failed = ack.Kind == JobAckKind.Failed;
            var error = failed ? JobValidation.TrimError(ack.Error, _rules) : null;
            var delay = RetryBackoff.AfterAcknowledgement(ack, _rules.Retry, _random);
            // The snooze count comes with the acknowledgement, from the acquisition: the lease fences it.
            var facts = new JobFacts(JobState.Running, ack.Lease.Attempt, ack.Lease.MaxAttempts, CancelRequested: false, Snoozes: ack.Snoozes);
            var normal = JobTransitions.Acknowledge(facts, ack.Kind, error, ack.Retryable, decidedAt, delay, (short?)ack.Priority);
            if (!JobTransitions.DependsOnCancelRequest(ack.Kind))
                rows.Add(new TransitionRow(ack.Lease.JobId, ack.Lease.Token, null, normal) { ResultJson = normal.State == JobState.Succeeded ? ack.ResultJson : null, Progress = ack.Progress });
            else
            {
                rows.Add(new TransitionRow(ack.Lease.JobId, ack.Lease.Token, false, normal) { Progress = ack.Progress });
                rows.Add(new TransitionRow(ack.Lease.JobId, ack.Lease.Token, true, JobTransitions.Acknowledge(facts with { CancelRequested = true }, ack.Kind, error, ack.Retryable, decidedAt, delay, (short?)ack.Priority)) { Progress = ack.Progress });
            }
        }

        batch.BatchCommands.Add(SetStatesCommand(rows, decidedAt));

        if (_retention.RecordRunsCommand(acks, _clock.ForWrite(decidedAt)) is { } runs) batch.BatchCommands.Insert(first, runs); // before the transitions
        if (lockTimeout) batch.BatchCommands.Insert(first, AckLockTimeout.Command(_options.AckLockTimeout)); // first: one held row must not stall the batch

        // Last, in the same transaction: children of jobs that finished are released or cancelled.
        batch.BatchCommands.Add(SettleCommand(cancelled: false, acks.Select(a => a.Lease.JobId).Distinct().ToArray()));
    }

    private NpgsqlBatchCommand SetStatesCommand(IReadOnlyList<TransitionRow> rows, DateTimeOffset decidedAt) =>
        _setStates.Command(rows, decidedAt, _clock.ForWrite(decidedAt), _rules.MaxErrorsKept, _schema.NotificationChannel);

    /// <summary>
    /// Reads the result sets of <see cref="AddAckCommands"/> (the run records, a plain INSERT, have
    /// none): the lock timeout's, the transitions, then the settling, leaving the reader on whatever the batch runs next.
    /// </summary>
    private static async Task<AckResult[]> ReadAckResultsAsync(NpgsqlDataReader reader, IReadOnlyList<JobAck> acks, bool lockTimeout, CancellationToken cancellationToken)
    {
        if (acks.Count == 0) return []; // no statements were added: the reader is already on what comes next
        if (lockTimeout) await AckLockTimeout.SkipAsync(reader, cancellationToken).ConfigureAwait(false);
        var outcome = await SetStatesIfRunning.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // the settling
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);

        var results = new AckResult[acks.Count];
        for (var i = 0; i < acks.Count; i++)
        {
            var id = acks[i].Lease.JobId;
            // A lease acknowledged twice in one batch is applied once; the first claims the outcome.
            results[i] = outcome.Remove((id, acks[i].Lease.Token), out var state) ? new AckResult(id, true, state) : new AckResult(id, false, null);
        }

        return results;
    }

    /// <inheritdoc />
    public async ValueTask<CancelOutcome> CancelAsync(long jobId, CancellationToken cancellationToken = default)
    {
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var _ = connection.ConfigureAwait(false);
        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var __ = transaction.ConfigureAwait(false);
        if (await ReadFactsAsync(connection, transaction, jobId, cancellationToken).ConfigureAwait(false) is not var (facts, now)) return CancelOutcome.NotFound;
        var (outcome, transition) = JobTransitions.Cancel(facts, now);
        await using var batch = new NpgsqlBatch(connection, transaction);
        if (outcome == CancelOutcome.CancellationRequested)
        {
            var request = new NpgsqlBatchCommand(_oneJob.RequestCancel);
            request.Parameters.Add(new NpgsqlParameter<long> { TypedValue = jobId });
            batch.BatchCommands.Add(request);
        }
        else if (transition is { } cancel)
        {
            batch.BatchCommands.Add(_oneJob.SetState(jobId, facts.State, cancel, now, _clock.ForWrite(now), _schema.NotificationChannel));
            batch.BatchCommands.Add(SettleCommand(cancelled: true, [jobId])); // its waiting descendants, and its ancestors' priority
        }

        if (batch.BatchCommands.Count > 0) await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return outcome;
    }

    /// <summary>Locks one job and reads what a transition is decided from, with the clock.</summary>
    private async Task<(JobFacts Facts, DateTimeOffset Now)?> ReadFactsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long jobId, CancellationToken cancellationToken)
    {
        await using var read = new NpgsqlCommand(_oneJob.ReadFacts, connection, transaction);
        read.Parameters.AddRange(OneJobTransition.ReadFactsParameters(jobId, _clock.WriteNow()));
        return await OneJobTransition.ReadFactsAsync(read, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<int> RescueExpiredLeasesAsync(CancellationToken cancellationToken = default) =>
        InBoundedRoundsAsync(async (connection, transaction) =>
        {
            // Read the expired leases under lock, decide each in JobTransitions, write them with the one fenced statement.
            List<TransitionRow> rows;
            DateTimeOffset decidedAt;
            await using (var command = _rescue.Command(connection, transaction, _clock.WriteNow(), _options.RescueBatchSize))
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                (rows, decidedAt) = await RescueCandidates.ReadDecidedAsync(reader, cancellationToken).ConfigureAwait(false);
            if (rows.Count == 0) return 0;
            await using var batch = new NpgsqlBatch(connection, transaction);
            batch.BatchCommands.Add(SetStatesCommand(rows, decidedAt));
            var finished = rows.Where(r => r.Transition.IsTerminal).Select(r => r.JobId).ToArray();
            if (finished.Length > 0) batch.BatchCommands.Add(SettleCommand(cancelled: false, finished)); // out of attempts: dead, and their children with them
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return rows.Count;
        }, cancellationToken);

    /// <summary>
    /// Runs <paramref name="round"/> (read a batch under lock, decide, write) in a transaction of its
    /// own, again while it fills a whole batch (<see cref="PostgresQueueOptions.RescueBatchSize"/>), at most 100 times.
    /// </summary>
    /// <returns>The rows changed in all.</returns>
    private async ValueTask<int> InBoundedRoundsAsync(Func<NpgsqlConnection, NpgsqlTransaction, Task<int>> round, CancellationToken cancellationToken)
    {
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var total = 0;
        for (var i = 0; i < 100; i++)
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var _ = connection.ConfigureAwait(false);
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var __ = transaction.ConfigureAwait(false);
            var changed = await round(connection, transaction).ConfigureAwait(false);
            if (changed == 0) break;
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            total += changed;
            if (changed < _options.RescueBatchSize) break;
        }

        return total;
    }

    /// <inheritdoc />
    public async ValueTask<bool> RedriveAsync(long jobId, CancellationToken cancellationToken = default)
    {
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var _ = connection.ConfigureAwait(false);
        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var __ = transaction.ConfigureAwait(false);
        if (await ReadFactsAsync(connection, transaction, jobId, cancellationToken).ConfigureAwait(false) is not var (facts, now)
            || JobTransitions.Redrive(facts, now) is not { } redrive)
            return false;
        try
        {
            await using var batch = new NpgsqlBatch(connection, transaction);
            batch.BatchCommands.Add(_oneJob.SetState(jobId, facts.State, redrive, now, _clock.ForWrite(now), _schema.NotificationChannel));
            batch.BatchCommands.Add(_enqueue.RegisterKeyOfJobCommand(jobId)); // active again: its key, if any, is served again
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return false; // another active job holds its unique key (the partial unique index says so)
        }
    }

    /// <inheritdoc />
    public async ValueTask<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default)
    {
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _read.Command(_dataSource, jobId, _clock.WriteNow());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await ReadJob.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> PauseQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateQueueName(queue, nameof(queue));
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _queueControl.Pause(_dataSource, queue, _clock.WriteNow());
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
    }

    /// <inheritdoc />
    public async ValueTask<bool> ResumeQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateQueueName(queue, nameof(queue));
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _queueControl.Resume(_dataSource, queue, _schema.NotificationChannel);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<QueueLimits> SetQueueLimitsAsync(string queue, QueueLimits limits, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateQueueName(queue, nameof(queue));
        JobValidation.ValidateQueueLimits(limits, nameof(limits));
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _queueControl.SetLimits(_dataSource, queue, limits, _schema.NotificationChannel);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? QueueControl.ReadLimits(reader, 0) : QueueLimits.None;
    }

    /// <inheritdoc />
    public ValueTask<int> ExpireOverdueAsync(CancellationToken cancellationToken = default) =>
        InBoundedRoundsAsync(async (connection, transaction) =>
        {
            List<(long Id, JobTransition Transition)> rows;
            DateTimeOffset decidedAt;
            await using (var command = _expire.CandidatesCommand(connection, transaction, _clock.WriteNow(), _options.RescueBatchSize))
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                (rows, decidedAt) = await ExpireOverdue.ReadDecidedAsync(reader, cancellationToken).ConfigureAwait(false);
            if (rows.Count == 0) return 0;
            await using var batch = new NpgsqlBatch(connection, transaction);
            batch.BatchCommands.Add(_expire.WriteCommand(rows, _clock.ForWrite(decidedAt), _rules.MaxErrorsKept));
            // Their children by their failure policy; a waiting one's ancestors lose its priority.
            batch.BatchCommands.Add(SettleCommand(cancelled: true, rows.Select(r => r.Id).ToArray()));
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return rows.Count;
        }, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<JobInfo>> ListJobsAsync(JobListQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _read.ListCommand(_dataSource, query, _clock.WriteNow());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await ReadJob.ReadAllAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<int> PurgeFinishedAsync(TimeSpan olderThan, int batchSize, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(olderThan, TimeSpan.Zero);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _retention.PurgeCommand(_dataSource, olderThan, _clock.WriteNow(), batchSize);
        return (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<QueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken = default)
    {
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = _retention.StatsBatch(_dataSource, _clock.WriteNow());
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await Retention.ReadStatsAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<AraImpactReport> GetAraReportAsync(DateTimeOffset windowStart, DateTimeOffset windowEnd, int ceilingMemoryMb, CancellationToken cancellationToken = default)
    {
        if (windowEnd <= windowStart) throw new ArgumentOutOfRangeException(nameof(windowEnd), windowEnd, $"The window's end must be after its start ({windowStart:O}).");
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new AraImpactQueries(_schema).Batch(_dataSource, windowStart, windowEnd, ceilingMemoryMb);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var (days, top, mismatches, fits) = await AraImpactQueries.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
        return new AraImpactReport { From = windowStart, To = windowEnd, Days = days, TopAllocations = top, HashMismatches = mismatches, Fits = fits };
    }

    /// <inheritdoc />
    public async ValueTask<long?> CountAheadAsync(long jobId, int cap = 10_000, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateCountCap(cap);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _retention.AheadCommand(_dataSource, jobId, cap, _clock.WriteNow());
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long ahead ? ahead : null;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<QueueActivity>> GetActivityAsync(TimeSpan window, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateActivityWindow(window);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = _retention.ActivityBatch(_dataSource, window, _clock.WriteNow());
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await Retention.ReadActivityAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask ReportHostAsync(WorkerHostInfo host, TimeSpan expiresAfter, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateHostReport(host, expiresAfter);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _hosts.Report(_dataSource, host, expiresAfter, _clock.WriteNow());
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> RemoveHostAsync(string workerId, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateWorkerId(workerId, nameof(workerId));
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _hosts.Remove(_dataSource, workerId);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<WorkerHostInfo>> ListHostsAsync(CancellationToken cancellationToken = default)
    {
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _hosts.List(_dataSource, _clock.WriteNow());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await Hosts.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    private ValueTask EnsureMigratedAsync(CancellationToken cancellationToken) => _migrations.EnsureAsync(cancellationToken);

    private static NpgsqlConnection ConnectionOf(NpgsqlTransaction transaction) =>
        transaction.Connection ?? throw new ArgumentException("The transaction has already completed.", nameof(transaction));

    private NpgsqlBatchCommand SettleCommand(bool cancelled, long[] jobIds) =>
        _dependencies.SettleCommand(cancelled, jobIds, _clock.WriteNow(), _schema.NotificationChannel);
}
