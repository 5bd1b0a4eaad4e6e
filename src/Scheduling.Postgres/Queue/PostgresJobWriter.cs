using Npgsql;
using NpgsqlTypes;
using Scheduling.Postgres.Notifications;
using Scheduling.Postgres.Statements;

namespace Scheduling.Postgres;

/// <summary>
/// Writes new jobs for <see cref="PostgresJobQueue"/>: one statement for one plain job, a round trip
/// of prepared INSERTs for a few, binary COPY for many, and graphs with their edges, locked parents
/// and lent priority, in the caller's transaction or its own.
/// </summary>
internal sealed class PostgresJobWriter(NpgsqlDataSource dataSource, PostgresQueueOptions options, PostgresSchema schema, EnqueueJobs enqueue, Dependencies dependencies, StatementClock clock)
{
    private readonly WakeCoalescer? _wakes = options.NotifyOnEnqueue ? new WakeCoalescer(queues => SendWakeAsync(dataSource, schema, queues)) : null;

    private readonly NpgsqlDataSource _dataSource = dataSource;
    private readonly PostgresQueueOptions _options = options;
    private readonly PostgresSchema _schema = schema;
    private readonly EnqueueJobs _enqueue = enqueue;
    private readonly Dependencies _dependencies = dependencies;
    private readonly StatementClock _clock = clock;

    /// <summary>
    /// One plain job is one statement; several, or any with dependencies, one transaction. A graph
    /// lends priority up its ancestors while finishing jobs release children down it: when the two
    /// meet in a deadlock, PostgreSQL aborts one side and the enqueue is simply run again.
    /// </summary>
    public Task<EnqueueResult[]> InsertOwnTransactionAsync(PreparedBatch prepared, CancellationToken cancellationToken) =>
        WakingAsync(prepared.Jobs, wake =>
            // One plain job is one round trip; a keyed one registers its key in the same batch, which runs as one implicit transaction.
            prepared.Jobs.Count == 1 && !prepared.Graph.HasDependencies
                ? InConnectionAsync(connection => InsertAsync(connection, null, prepared, wake, cancellationToken), cancellationToken)
                : InOwnTransactionAsync((connection, transaction) => InsertAsync(connection, transaction, prepared, wake, cancellationToken), prepared.Graph.HasDependencies, cancellationToken));

    /// <summary>
    /// Runs <paramref name="write"/>, a write of <paramref name="jobs"/> the library commits itself,
    /// with the queues whose wake-up NOTIFY it must carry (<see cref="WakeCoalescer"/>): the others are
    /// woken after it commits, by a notify already in flight or one sent then.
    /// </summary>
    public async Task<T> WakingAsync<T>(IReadOnlyList<PreparedJob> jobs, Func<string[], Task<T>> write)
    {
        if (_wakes is null) return await write([]).ConfigureAwait(false);
        var queues = QueuesOf(jobs);
        var carried = _wakes.Begin(queues);
        var committed = false;
        try
        {
            var result = await write(carried).ConfigureAwait(false);
            committed = true;
            return result;
        }
        finally
        {
            _wakes.End(queues, carried, committed);
        }
    }

    /// <summary>The wake-ups of this writer's queues, when enqueues notify.</summary>
    internal WakeCoalescer? Wakes => _wakes;

    private static string[] QueuesOf(IReadOnlyList<PreparedJob> jobs) =>
        jobs.Count == 1 ? [jobs[0].Queue] : jobs.Select(j => j.Queue).Distinct(StringComparer.Ordinal).ToArray();

    private static async Task SendWakeAsync(NpgsqlDataSource dataSource, PostgresSchema schema, string[] queues)
    {
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(EnqueueJobs.NotifyQueuesCommand(schema.NotificationChannel, queues));
        await batch.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs <paramref name="work"/> in a transaction of its own and commits; when it may meet finishing
    /// jobs in a deadlock (<paramref name="retryDeadlocks"/>: it locks parents or batches), an aborted run is run again, up to three times.
    /// </summary>
    public Task<T> InOwnTransactionAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> work, bool retryDeadlocks, CancellationToken cancellationToken) =>
        DeadlockRetry.RunAsync(() => InConnectionAsync(async connection =>
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                var result = await work(connection, transaction).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return result;
            }
        }, cancellationToken), cancellationToken, retryDeadlocks);

    private async Task<T> InConnectionAsync<T>(Func<NpgsqlConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
            return await work(connection).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes the batch in the caller's transaction, all or nothing: when a job can be refused for its
    /// unique key after others were written (<see cref="DuplicateJobException"/>), the batch runs in a
    /// savepoint that is rolled back on any failure, so the caller's transaction keeps its own work,
    /// none of the batch, and stays usable (the in-memory queue likewise refuses before writing).
    /// </summary>
    public async Task<EnqueueResult[]> InsertInCallersTransactionAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, PreparedBatch prepared, CancellationToken cancellationToken)
    {
        // The caller commits: its writes carry their own notify.
        var wake = _options.NotifyOnEnqueue ? QueuesOf(prepared.Jobs) : [];
        if (!prepared.Jobs.Exists(j => j is { UniqueKey: not null, OnUniqueConflict: UniqueKeyConflict.Reject }))
            return await InsertAsync(connection, transaction, prepared, wake, cancellationToken).ConfigureAwait(false);
        const string savepoint = "scheduling_enqueue";
        await transaction.SaveAsync(savepoint, cancellationToken).ConfigureAwait(false);
        try
        {
            var results = await InsertAsync(connection, transaction, prepared, wake, cancellationToken).ConfigureAwait(false);
            await transaction.ReleaseAsync(savepoint, cancellationToken).ConfigureAwait(false);
            return results;
        }
        catch (Exception) when (connection.FullState == System.Data.ConnectionState.Open)
        {
            await transaction.RollbackAsync(savepoint, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Writes the batch in <paramref name="transaction"/> (none: one implicit transaction) with a
    /// NOTIFY of the queues in <paramref name="wake"/>, which wakes their idle workers at commit.
    /// </summary>
    public async Task<EnqueueResult[]> InsertAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, PreparedBatch prepared, string[] wake, CancellationToken cancellationToken)
    {
        var jobs = prepared.Jobs;
        using var activity = JobTelemetry.StartSend(jobs);
        var keyLock = transaction is null ? null : _enqueue.LockUniqueKeysCommand(jobs);
        if (keyLock is not null && prepared.Graph.HasDependencies)
        {
            // A graph writes its keys layer by layer: lock them all first.
            await using var lockBatch = new NpgsqlBatch(connection, transaction) { BatchCommands = { keyLock } };
            await lockBatch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            keyLock = null;
        }

        // Partition keys are registered with the claim of limited queues in the enqueue's transaction (EnqueueJobs.RegisterKeys):
        // in the batch of the inserts when they go as INSERTs, else after them.
        var register = _enqueue.RegisterKeysCommand(jobs.Select(j => (j.Queue, j.PartitionKey)));
        var notify = wake.Length > 0 ? EnqueueJobs.NotifyQueuesCommand(_schema.NotificationChannel, wake) : null;
        var inserts = !prepared.Graph.HasDependencies && !(transaction is not null && jobs.Count >= _options.CopyThreshold && jobs.TrueForAll(j => j.UniqueKey is null));
        var results = prepared.Graph.HasDependencies
            ? await WriteGraphAsync(connection, transaction!, prepared, cancellationToken).ConfigureAwait(false)
            : !inserts
                ? await CopyAsync(connection, transaction!, jobs, null, cancellationToken).ConfigureAwait(false)
                : await WriteAsync(connection, transaction, jobs, null, cancellationToken, keyLock, register, notify).ConfigureAwait(false);
        if (!inserts && (register is not null || notify is not null))
        {
            await using var after = new NpgsqlBatch(connection, transaction);
            if (register is not null) after.BatchCommands.Add(register);
            if (notify is not null) after.BatchCommands.Add(notify);
            await after.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        JobTelemetry.Sent(activity, jobs, results);
        return results;
    }

    /// <summary>
    /// Writes jobs one statement each, in one round trip; <paramref name="initial"/> gives each job's
    /// dependency state (null: available with no parents), and <paramref name="keyLock"/>, when given,
    /// goes first (<see cref="EnqueueJobs.LockUniqueKeysCommand"/>), and <paramref name="registerKeys"/> and <paramref name="notify"/> last.
    /// </summary>
    private async Task<EnqueueResult[]> WriteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, IReadOnlyList<PreparedJob> jobs, InitialState[]? initial, CancellationToken cancellationToken, NpgsqlBatchCommand? keyLock = null, NpgsqlBatchCommand? registerKeys = null, NpgsqlBatchCommand? notify = null)
    {
        var results = new EnqueueResult?[jobs.Count];
        var pending = Enumerable.Range(0, jobs.Count).ToList();
        // A unique insert that lost a race to a transaction committing meanwhile sees neither its
        // own row nor the winner's in its snapshot; running it again resolves it.
        for (var round = 0; pending.Count > 0; round++)
        {
            if (round == 5) throw new InvalidOperationException($"Could not resolve the unique key '{jobs[pending[0]].UniqueKey}' after {round} attempts; it is being enqueued and finished concurrently.");
            await using var batch = new NpgsqlBatch(connection, transaction);
            var locking = round == 0 && keyLock is not null;
            if (locking) batch.BatchCommands.Add(keyLock!);
            foreach (var index in pending) batch.BatchCommands.Add(InsertCommand(jobs[index], initial?[index] ?? InitialState.Of(jobs[index])));
            if (round == 0 && registerKeys is not null) batch.BatchCommands.Add(registerKeys); // last: these return nothing read
            if (round == 0 && notify is not null) batch.BatchCommands.Add(notify);
            await using (var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                if (locking) await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                foreach (var index in pending)
                {
                    if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        results[index] = new EnqueueResult(reader.GetInt64(0), reader.GetBoolean(1)) { Replaced = reader.GetBoolean(2) };
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

    private static InitialState Initial(PreparedJob job, long[] parents, Dictionary<long, JobState> states) =>
        InitialState.Of(job, parents.Select(id => (id, states[id])));

    private async Task LockParentsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long[] ids, Dictionary<long, JobState> states, CancellationToken cancellationToken)
    {
        if (ids.Length == 0) return;
        await using var command = _dependencies.LockParentsCommand(connection, transaction, ids);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await Dependencies.ReadParentsAsync(reader, states, cancellationToken).ConfigureAwait(false);
    }

    private NpgsqlBatchCommand InsertCommand(PreparedJob job, InitialState initial)
    {
        var decidedAt = _clock.Now();
        return _enqueue.InsertCommand(job, initial, decidedAt, _clock.ForWrite(decidedAt));
    }

    /// <summary>The clock and a block of new ids, ascending, so ids follow request order (equal-priority jobs run in the order given).</summary>
    private async Task<(DateTimeOffset Now, long[] Ids)> ReserveIdsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int count, CancellationToken cancellationToken)
    {
        await using var reserve = new NpgsqlCommand(_enqueue.ReserveIds, connection, transaction);
        reserve.Parameters.Add(new NpgsqlParameter<int> { TypedValue = count });
        reserve.Parameters.Add(new NpgsqlParameter { Value = (object?)_clock.WriteNow() ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
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
                await _enqueue.WriteRowAsync(importer, ids[i], jobs[i], initial?[i] ?? InitialState.Of(jobs[i]), now, cancellationToken).ConfigureAwait(false);

            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        return ids.Select(id => new EnqueueResult(id, true)).ToArray();
    }
}
