using System.Globalization;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using Scheduling.Postgres.Statements;

namespace Scheduling.Postgres;

/// <summary>
/// The PostgreSQL <see cref="IJobQueue"/>: batch acquisition with <c>FOR UPDATE SKIP LOCKED</c>,
/// leases fenced by a token, batched acknowledgements, binary COPY for bulk enqueue, and NOTIFY
/// in the enqueueing transaction. Safe to share across threads; hold one per schema.
/// </summary>
public sealed class PostgresJobQueue : IJobQueue, IJobWorkerStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresQueueOptions _options;
    private readonly JobQueueOptions _rules;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly PostgresSchema _schema;
    private readonly AcquireJobs _acquire;
    private readonly EnqueueJobs _enqueue;
    private readonly ReadJob _read;
    private readonly Heartbeat _heartbeat;
    private readonly RescueCandidates _rescue;
    private readonly Dependencies _dependencies;
    private readonly Retention _retention;
    private readonly PostgresMigrator _migrator;
    private readonly ResourceAllocator? _allocator;
    private readonly MigrationGate _migrations;
    private readonly SetStatesIfRunning _setStates;
    private readonly OneJobTransition _oneJob;

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
        _time = timeProvider ?? TimeProvider.System;
        _random = random ?? Random.Shared;
        _schema = new PostgresSchema(_options.Schema, "options.Schema");
        _acquire = new AcquireJobs(_schema);
        _enqueue = new EnqueueJobs(_schema, _options.NotifyOnEnqueue, JobOrder.StepMicroseconds(_rules.AgingStep));
        _read = new ReadJob(_schema);
        _heartbeat = new Heartbeat(_schema);
        _rescue = new RescueCandidates(_schema);
        _dependencies = new Dependencies(_schema);
        _retention = new Retention(_schema);
        _setStates = new SetStatesIfRunning(_schema);
        _oneJob = new OneJobTransition(_schema);
        _migrator = new PostgresMigrator(dataSource, _schema);
        _migrations = new MigrationGate(_migrator, _options.ApplyMigrations);
    }

    /// <summary>The schema holding the tables.</summary>
    public string Schema => _schema.Name;

    /// <summary>The NOTIFY channel announcing new work (the queue name is the payload).</summary>
    public string NotificationChannel => _schema.NotificationChannel;

    /// <summary>Applies pending migrations now; idempotent and safe to run from many hosts at once.</summary>
    /// <returns>The migration versions this call applied.</returns>
    public async Task<IReadOnlyList<int>> MigrateAsync(CancellationToken cancellationToken = default)
    {
        var applied = await _migrator.MigrateAsync(cancellationToken).ConfigureAwait(false);
        _migrations.MarkDone();
        return applied;
    }

    /// <inheritdoc />
    public async ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default)
    {
        var prepared = JobValidation.PrepareOne(request, _rules);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await JobValidation.AllocateAsync(prepared.Jobs, _allocator, cancellationToken).ConfigureAwait(false);
        return (await InsertOwnTransactionAsync(prepared, cancellationToken).ConfigureAwait(false))[0];
    }

    /// <summary>Enqueues one job inside the caller's transaction: it becomes visible (and wakes workers) only if that transaction commits.</summary>
    public async ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        var prepared = JobValidation.PrepareOne(request, _rules);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await JobValidation.AllocateAsync(prepared.Jobs, _allocator, cancellationToken).ConfigureAwait(false);
        return (await InsertAsync(ConnectionOf(transaction), transaction, prepared, cancellationToken).ConfigureAwait(false))[0];
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default)
    {
        var prepared = JobValidation.PrepareAll(requests, _rules);
        if (prepared.Jobs.Count == 0) return [];
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await JobValidation.AllocateAsync(prepared.Jobs, _allocator, cancellationToken).ConfigureAwait(false);
        return await InsertOwnTransactionAsync(prepared, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// One plain job is one statement; several, or any with dependencies, one transaction. A graph
    /// lends priority up its ancestors while finishing jobs release children down it: when the two
    /// meet in a deadlock, PostgreSQL aborts one side and the enqueue is simply run again.
    /// </summary>
    private async Task<EnqueueResult[]> InsertOwnTransactionAsync(PreparedBatch prepared, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await InsertOnceAsync(prepared, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.DeadlockDetected && attempt < 3 && prepared.Graph.HasDependencies)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 50) * attempt), cancellationToken).ConfigureAwait(false); // real time: a test clock may stand still
            }
        }
    }

    private async Task<EnqueueResult[]> InsertOnceAsync(PreparedBatch prepared, CancellationToken cancellationToken)
    {
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            if (prepared.Jobs.Count == 1 && !prepared.Graph.HasDependencies)
                return await InsertAsync(connection, null, prepared, cancellationToken).ConfigureAwait(false);
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                var results = await InsertAsync(connection, transaction, prepared, cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return results;
            }
        }
    }

    /// <summary>Enqueues many jobs inside the caller's transaction (all or none, with it).</summary>
    public async ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        var prepared = JobValidation.PrepareAll(requests, _rules);
        if (prepared.Jobs.Count == 0) return [];
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await JobValidation.AllocateAsync(prepared.Jobs, _allocator, cancellationToken).ConfigureAwait(false);
        return await InsertAsync(ConnectionOf(transaction), transaction, prepared, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AcquiredJob>> AcquireAsync(AcquireRequest request, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateAcquire(request);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = _dataSource.CreateBatch();
        batch.BatchCommands.Add(_acquire.Command(request, _random, WriteClock(Clock.Now(_time))));
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
        await using var batch = _dataSource.CreateBatch();
        AddAckCommands(batch, acks);
        batch.BatchCommands.Add(_acquire.Command(request, _random, WriteClock(Clock.Now(_time))));
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var acknowledged = await ReadAckResultsAsync(reader, acks, cancellationToken).ConfigureAwait(false);
        return new AcknowledgeAndAcquireResult(acknowledged, await AcquireJobs.ReadAsync(reader, request.MaxJobs, cancellationToken).ConfigureAwait(false));
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<HeldLease>> HeartbeatAsync(string workerId, IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateHeartbeat(workerId, leases, leaseDuration);
        if (leases.Count == 0) return [];
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _heartbeat.Command(_dataSource, workerId, leases, leaseDuration, WriteClock(Clock.Now(_time)));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await Heartbeat.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AckResult>> AcknowledgeAsync(IReadOnlyList<JobAck> acks, CancellationToken cancellationToken = default)
    {
        JobValidation.ValidateAcks(acks);
        if (acks.Count == 0) return [];
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = _dataSource.CreateBatch(); // one round trip for the whole batch
        AddAckCommands(batch, acks);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await ReadAckResultsAsync(reader, acks, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Adds the statements that apply <paramref name="acks"/> (none for none).</summary>
    private void AddAckCommands(NpgsqlBatch batch, IReadOnlyList<JobAck> acks)
    {
        if (acks.Count == 0) return;
        var first = batch.BatchCommands.Count;
        // Decided above the store: the lease carries the attempt and its limit; whether cancellation
        // was requested meanwhile only the row knows, so a transition that depends on it is sent for both.
        var decidedAt = Clock.Now(_time);
        var rows = new List<TransitionRow>(acks.Count);
        foreach (var ack in acks)
        {
            var failed = ack.Kind == JobAckKind.Failed;
            var error = failed ? JobValidation.TrimError(ack.Error, _rules) : null;
            var delay = failed ? RetryBackoff.Delay(ack.Lease.Attempt, _rules.Retry, _random) : TimeSpan.Zero;
            var facts = new JobFacts(JobState.Running, ack.Lease.Attempt, ack.Lease.MaxAttempts, CancelRequested: false);
            var normal = JobTransitions.Acknowledge(facts, ack.Kind, error, ack.Retryable, decidedAt, delay);
            var cancelled = JobTransitions.Acknowledge(facts with { CancelRequested = true }, ack.Kind, error, ack.Retryable, decidedAt, delay);
            if (normal == cancelled) rows.Add(new TransitionRow(ack.Lease.JobId, ack.Lease.Token, null, normal));
            else
            {
                rows.Add(new TransitionRow(ack.Lease.JobId, ack.Lease.Token, false, normal));
                rows.Add(new TransitionRow(ack.Lease.JobId, ack.Lease.Token, true, cancelled));
            }
        }

        batch.BatchCommands.Add(SetStatesCommand(rows, decidedAt));

        if (_retention.RecordRunsCommand(acks, WriteClock(decidedAt)) is { } runs) batch.BatchCommands.Insert(first, runs); // before the transitions

        // Last, in the same transaction: children of jobs that finished are released or cancelled.
        batch.BatchCommands.Add(SettleCommand(cancelled: false, acks.Select(a => a.Lease.JobId).Distinct().ToArray()));
    }

    private NpgsqlBatchCommand SetStatesCommand(IReadOnlyList<TransitionRow> rows, DateTimeOffset decidedAt) =>
        _setStates.Command(rows, decidedAt, WriteClock(decidedAt), _rules.MaxErrorsKept, _schema.NotificationChannel);

    /// <summary>
    /// Reads the result sets of <see cref="AddAckCommands"/> (the run records, a plain INSERT, have
    /// none): the transitions, then the settling, leaving the reader on whatever the batch runs next.
    /// </summary>
    private static async Task<AckResult[]> ReadAckResultsAsync(NpgsqlDataReader reader, IReadOnlyList<JobAck> acks, CancellationToken cancellationToken)
    {
        var outcome = await SetStatesIfRunning.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false); // the settling
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);

        var results = new AckResult[acks.Count];
        for (var i = 0; i < acks.Count; i++)
        {
            var id = acks[i].Lease.JobId;
            // A job acknowledged twice in one batch is applied once; the first claims the outcome.
            results[i] = outcome.Remove(id, out var state) ? new AckResult(id, true, state) : new AckResult(id, false, null);
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
            batch.BatchCommands.Add(_oneJob.SetState(jobId, facts.State, cancel, now, WriteClock(now), _schema.NotificationChannel));
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
        read.Parameters.AddRange(OneJobTransition.ReadFactsParameters(jobId, WriteClock(Clock.Now(_time))));
        return await OneJobTransition.ReadFactsAsync(read, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The time a statement writes: null stands for the database clock.</summary>
    private DateTimeOffset? WriteClock(DateTimeOffset decidedAt) => _options.UseDatabaseClock ? null : decidedAt;

    /// <inheritdoc />
    public async ValueTask<int> RescueExpiredLeasesAsync(CancellationToken cancellationToken = default)
    {
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var total = 0;
        for (var round = 0; round < 100; round++)
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var _ = connection.ConfigureAwait(false);
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var __ = transaction.ConfigureAwait(false);
            // Read the expired leases under lock, decide each in JobTransitions, write them with the one fenced statement.
            List<TransitionRow> rows;
            DateTimeOffset decidedAt;
            await using (var command = _rescue.Command(connection, transaction, WriteClock(Clock.Now(_time)), _options.RescueBatchSize))
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                (rows, decidedAt) = await RescueCandidates.ReadDecidedAsync(reader, cancellationToken).ConfigureAwait(false);

            var rescued = rows.Count;
            if (rescued == 0) break;
            await using (var batch = new NpgsqlBatch(connection, transaction))
            {
                batch.BatchCommands.Add(SetStatesCommand(rows, decidedAt));
                var finished = rows.Where(r => r.Transition.IsTerminal).Select(r => r.JobId).ToArray();
                if (finished.Length > 0) batch.BatchCommands.Add(SettleCommand(cancelled: false, finished)); // out of attempts: dead, and their children with them
                await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            total += rescued;
            if (rescued < _options.RescueBatchSize) break;
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
            batch.BatchCommands.Add(_oneJob.SetState(jobId, facts.State, redrive, now, WriteClock(now), _schema.NotificationChannel));
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
        await using var command = _read.Command(_dataSource, jobId, WriteClock(Clock.Now(_time)));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await ReadJob.ReadAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<int> PurgeFinishedAsync(DateTimeOffset finishedBefore, int batchSize, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _retention.PurgeCommand(_dataSource, finishedBefore, batchSize);
        return (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<QueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken = default)
    {
        await EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _retention.StatsCommand(_dataSource, WriteClock(Clock.Now(_time)));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await Retention.ReadStatsAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    private ValueTask EnsureMigratedAsync(CancellationToken cancellationToken) => _migrations.EnsureAsync(cancellationToken);

    private async Task<EnqueueResult[]> InsertAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, PreparedBatch prepared, CancellationToken cancellationToken)
    {
        var jobs = prepared.Jobs;
        using var activity = JobTelemetry.StartSend(jobs);
        var results = prepared.Graph.HasDependencies
            ? await WriteGraphAsync(connection, transaction!, prepared, cancellationToken).ConfigureAwait(false)
            : transaction is not null && jobs.Count >= _options.CopyThreshold && jobs.TrueForAll(j => j.UniqueKey is null)
                ? await CopyAsync(connection, transaction, jobs, null, cancellationToken).ConfigureAwait(false)
                : await WriteAsync(connection, transaction, jobs, null, cancellationToken).ConfigureAwait(false);
        JobTelemetry.Sent(activity, jobs, results);
        return results;
    }

    /// <summary>
    /// Writes jobs one statement each, in one round trip; <paramref name="initial"/> gives each job's
    /// dependency state (null: available with no parents).
    /// </summary>
    private async Task<EnqueueResult[]> WriteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyList<PreparedJob> jobs, InitialState[]? initial, CancellationToken cancellationToken)
    {
        var results = new EnqueueResult?[jobs.Count];
        var pending = Enumerable.Range(0, jobs.Count).ToList();
        // A unique insert that lost a race to a transaction committing meanwhile sees neither its
        // own row nor the winner's in its snapshot; running it again resolves it.
        for (var round = 0; pending.Count > 0; round++)
        {
            if (round == 5) throw new InvalidOperationException($"Could not resolve the unique key '{jobs[pending[0]].UniqueKey}' after {round} attempts; it is being enqueued and finished concurrently.");
            await using var batch = new NpgsqlBatch(connection, transaction);
            foreach (var index in pending) batch.BatchCommands.Add(InsertCommand(jobs[index], initial?[index] ?? InitialState.Available));
            await using (var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                foreach (var index in pending)
                {
                    if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        results[index] = new EnqueueResult(reader.GetInt64(0), reader.GetBoolean(1));
                    await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            pending.RemoveAll(i => results[i] is not null);
        }

        for (var i = 0; i < jobs.Count; i++)
        {
            if (jobs[i] is { UniqueKey: { } key, OnUniqueConflict: UniqueKeyConflict.Reject } && results[i] is { Created: false } existing)
                throw new DuplicateJobException(key, existing.JobId); // the caller's transaction (or ours) is rolled back
        }

        return results.Select(r => r!.Value).ToArray();
    }

    /// <summary>
    /// Enqueues a call with dependencies inside a transaction: locks the existing parents (a
    /// concurrent completion then waits for this transaction and sees its edges), rejects unknown
    /// ones, writes the jobs layer by layer (parents first, so local references resolve to ids),
    /// then the edges, then lends the new waiting jobs' priority to their ancestors.
    /// </summary>
    private async Task<EnqueueResult[]> WriteGraphAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, PreparedBatch prepared, CancellationToken cancellationToken)
    {
        var graph = prepared.Graph;
        var states = new Dictionary<long, JobState>();
        var named = graph.AllExistingParents();
        await LockParentsAsync(connection, transaction, named, states, cancellationToken).ConfigureAwait(false);
        var missing = named.Where(id => !states.ContainsKey(id)).ToArray();
        if (missing.Length > 0) throw graph.UnknownParents(missing, prepared.Name);

        var jobs = prepared.Jobs;
        var results = new EnqueueResult[jobs.Count];
        var parentsOf = new long[jobs.Count][];
        if (jobs.TrueForAll(j => j.UniqueKey is null) && (graph.Layers.Count > 2 || jobs.Count >= _options.CopyThreshold))
        {
            // No unique key can hand back an existing job, so every id and state is known up front: the
            // whole graph, however deep, goes in one COPY instead of a round trip per layer.
            // Ids go out in layer order (parents before children), as the layered writes and the in-memory queue number them.
            var (now, block) = await ReserveIdsAsync(connection, transaction, jobs.Count, cancellationToken).ConfigureAwait(false);
            var ids = new long[jobs.Count];
            var next = 0;
            foreach (var i in graph.Layers.SelectMany(layer => layer)) ids[i] = block[next++];
            var all = new InitialState[jobs.Count];
            foreach (var i in graph.Layers.SelectMany(layer => layer))
            {
                parentsOf[i] = graph.ExistingParents[i].Concat(graph.LocalParents[i].Select(p => ids[p])).Distinct().ToArray();
                all[i] = Initial(jobs[i], parentsOf[i], states);
                states[ids[i]] = all[i].State;
            }

            results = await CopyAsync(connection, transaction, jobs, all, cancellationToken, (now, ids)).ConfigureAwait(false);
        }
        else
        {
            foreach (var layer in graph.Layers)
            {
                var initial = new InitialState[layer.Length];
                for (var k = 0; k < layer.Length; k++)
                {
                    var i = layer[k];
                    parentsOf[i] = graph.ExistingParents[i].Concat(graph.LocalParents[i].Select(p => results[p].JobId)).Distinct().ToArray();
                    initial[k] = Initial(jobs[i], parentsOf[i], states);
                }

                var layerJobs = layer.Select(i => jobs[i]).ToArray();
                var written = layerJobs.Length >= _options.CopyThreshold && Array.TrueForAll(layerJobs, j => j.UniqueKey is null)
                    ? await CopyAsync(connection, transaction, layerJobs, initial, cancellationToken).ConfigureAwait(false) // a wide fan-out
                    : await WriteAsync(connection, transaction, layerJobs, initial, cancellationToken).ConfigureAwait(false);
                var existing = new List<long>();
                for (var k = 0; k < layer.Length; k++)
                {
                    results[layer[k]] = written[k];
                    if (written[k].Created) states[written[k].JobId] = initial[k].State;
                    else existing.Add(written[k].JobId); // a unique key returned an existing job: it keeps its own parents
                }

                await LockParentsAsync(connection, transaction, existing.Distinct().Order().ToArray(), states, cancellationToken).ConfigureAwait(false);
            }
        }

        var parents = new List<long>();
        var children = new List<long>();
        var resolved = new List<bool>();
        var waiting = new List<long>();
        for (var i = 0; i < jobs.Count; i++)
        {
            if (!results[i].Created) continue;
            if (states[results[i].JobId] == JobState.Waiting) waiting.Add(results[i].JobId);
            foreach (var parent in parentsOf[i])
            {
                parents.Add(parent);
                children.Add(results[i].JobId);
                resolved.Add(states[parent].IsTerminal());
            }
        }

        await using var batch = new NpgsqlBatch(connection, transaction);
        if (parents.Count > 0)
        {
            batch.BatchCommands.Add(_dependencies.InsertEdgesCommand(parents.ToArray(), children.ToArray(), resolved.ToArray()));
        }

        if (waiting.Count > 0)
        {
            batch.BatchCommands.Add(_dependencies.RaiseAncestorsCommand(waiting.ToArray()));
        }

        if (batch.BatchCommands.Count > 0) await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return results;
    }

    private static InitialState Initial(PreparedJob job, long[] parents, Dictionary<long, JobState> states)
    {
        var (state, pending, failedParent, failedState) = DependencyRules.Initial(parents.Select(id => (id, states[id])), job.OnParentFailure);
        return new InitialState(state, pending, state == JobState.Cancelled ? DependencyRules.CancelledBecause(failedParent, failedState) : null);
    }

    private async Task LockParentsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long[] ids, Dictionary<long, JobState> states, CancellationToken cancellationToken)
    {
        if (ids.Length == 0) return;
        await using var command = _dependencies.LockParentsCommand(connection, transaction, ids);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await Dependencies.ReadParentsAsync(reader, states, cancellationToken).ConfigureAwait(false);
    }

    private NpgsqlBatchCommand InsertCommand(PreparedJob job, InitialState initial)
    {
        var decidedAt = Clock.Now(_time);
        return _enqueue.InsertCommand(job, initial, decidedAt, WriteClock(decidedAt), _schema.NotificationChannel);
    }

    /// <summary>The clock and a block of new ids, ascending, so ids follow request order (equal-priority jobs run in the order given).</summary>
    private async Task<(DateTimeOffset Now, long[] Ids)> ReserveIdsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int count, CancellationToken cancellationToken)
    {
        await using var reserve = new NpgsqlCommand(_enqueue.ReserveIds, connection, transaction);
        reserve.Parameters.Add(new NpgsqlParameter<int> { TypedValue = count });
        reserve.Parameters.Add(Now());
        await using var reader = await reserve.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var ids = reader.GetFieldValue<long[]>(1);
        Array.Sort(ids);
        return (reader.GetFieldValue<DateTimeOffset>(0), ids);
    }

    /// <summary>Writes jobs without unique keys by binary COPY; <paramref name="initial"/> gives their dependency state (null: available).</summary>
    private async Task<EnqueueResult[]> CopyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<PreparedJob> jobs, InitialState[]? initial, CancellationToken cancellationToken, (DateTimeOffset Now, long[] Ids)? reserved = null)
    {
        var (now, ids) = reserved ?? await ReserveIdsAsync(connection, transaction, jobs.Count, cancellationToken).ConfigureAwait(false);
        var importer = await connection.BeginBinaryImportAsync(_enqueue.Copy, cancellationToken).ConfigureAwait(false);
        await using (importer.ConfigureAwait(false))
        {
            for (var i = 0; i < jobs.Count; i++)
                await _enqueue.WriteRowAsync(importer, ids[i], jobs[i], initial?[i] ?? InitialState.Available, now, cancellationToken).ConfigureAwait(false);

            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        if (_options.NotifyOnEnqueue)
        {
            await using var notify = new NpgsqlCommand(EnqueueJobs.NotifyQueues, connection, transaction);
            notify.Parameters.Add(Text(_schema.NotificationChannel));
            notify.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = jobs.Select(j => j.Queue).Distinct(StringComparer.Ordinal).ToArray() });
            await notify.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        return ids.Select(id => new EnqueueResult(id, true)).ToArray();
    }

    private static NpgsqlConnection ConnectionOf(NpgsqlTransaction transaction) =>
        transaction.Connection ?? throw new ArgumentException("The transaction has already completed.", nameof(transaction));

    private NpgsqlParameter Now() => new()
    {
        Value = _options.UseDatabaseClock ? DBNull.Value : Clock.Now(_time),
        NpgsqlDbType = NpgsqlDbType.TimestampTz,
    };

    private static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Text };

    private static JobLink[] ParseLinks(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.EnumerateArray().Select(e => new JobLink(e[0].GetInt64(), StateCodec.Parse(e[1].GetString()!))).ToArray();
    }

    private NpgsqlBatchCommand SettleCommand(bool cancelled, long[] jobIds) =>
        _dependencies.SettleCommand(cancelled, jobIds, WriteClock(Clock.Now(_time)), _schema.NotificationChannel);
}
