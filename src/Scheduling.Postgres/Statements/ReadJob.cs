using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>One job with its errors, allocation, parents and children: the statement and its row reader.</summary>
internal sealed class ReadJob
{
    // Row ordinals; the allocation columns follow the last.
    private const int Id = 0, Queue = 1, Kind = 2, Payload = 3, State = 4, RunAt = 5, Now = 6, Priority = 7, Attempt = 8, MaxAttempts = 9, CreatedAt = 10,
        AttemptedAt = 11, FinalizedAt = 12, LockedBy = 13, LeaseExpires = 14, CancelRequested = 15, UniqueKey = 16, Errors = 17, CommandColumn = 18,
        CommandHash = 19, Description = 20, EffectivePriority = 21, PendingParents = 22, OnParentFailure = 23, Parents = 24, Children = 25, Allocation = 26,
        TimeoutMs = Allocation + AllocationColumns.Count, Snoozes = TimeoutMs + 1, PartitionKey = Snoozes + 1, LatestStartAt = PartitionKey + 1, Result = LatestStartAt + 1,
        Progress = Result + 1, PayloadVersion = Progress + ProgressColumns.Count, BatchId = PayloadVersion + 1, TraceParent = BatchId + 1;

    public ReadJob(PostgresSchema schema)
    {
        Sql = schema.Apply(Select("$2") + " WHERE id = $1");
        _select = schema.Apply(Select("$8"));
        _schema = schema;
    }

    // Linked jobs come as [id, state, run_at]; the reader turns them into the states readers see.
    private static string Select(string now) => $"""
        SELECT id, queue, kind, payload, state, run_at, coalesce({now}::timestamptz, now()), priority, attempt, max_attempts, created_at,
               attempted_at, finalized_at, locked_by, lease_expires_at, cancel_requested, unique_key, errors, command,
               command_hash, description, coalesce(effective_priority, priority), parents_pending, on_parent_failure,
               (SELECT coalesce(jsonb_agg(jsonb_build_array(p.id, p.state, p.run_at) ORDER BY p.id), '[]')
                FROM {"{schema}"}.job_dependencies d JOIN {"{schema}"}.jobs p ON p.id = d.parent_id WHERE d.child_id = j.id)::text,
               (SELECT coalesce(jsonb_agg(jsonb_build_array(c.id, c.state, c.run_at) ORDER BY c.id), '[]')
                FROM {"{schema}"}.job_dependencies d JOIN {"{schema}"}.jobs c ON c.id = d.child_id WHERE d.parent_id = j.id)::text,
               {AllocationColumns.List}, timeout_ms, snoozes, partition_key, latest_start_at, result::text, {ProgressColumns.List}, payload_version, batch_id, trace_parent
        FROM {"{schema}"}.jobs j
        """;

    public string Sql { get; }

    private readonly string _select;
    private readonly PostgresSchema _schema;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _lists = new(StringComparer.Ordinal);

    /// <summary>
    /// The list statement for the filters <paramref name="query"/> sets, and only those: a condition on a
    /// filter that is not set (<c>$1 IS NULL OR ...</c>) keeps PostgreSQL from using an index for the ones
    /// that are. States are written as the stored states they mean (scheduled: available, not due yet),
    /// from the closed set of <see cref="JobState"/> names, so a filter on dead jobs reads their partial index.
    /// The parameters are the same in every variant ($1-$10, see <see cref="ListCommand"/>); variants are cached.
    /// </summary>
    public string ListSql(JobListQuery query)
    {
        var states = query.States is { Count: > 0 } s ? s.Distinct().Order().ToArray() : [];
        var key = string.Concat(query.Queue is null ? "-" : "q", query.Kind is null ? "-" : "k", query.CreatedFrom is null ? "-" : "f", query.CreatedBefore is null ? "-" : "b",
            query.BeforeId is null ? "-" : "i", query.ParentsOf is null ? "-" : "p", query.BatchId is null ? "-" : "t", query.UniqueKey is null ? "-" : "u",
            query.ErrorContains is null ? "-" : "e", query.FromId is null ? "-" : "n", ":", string.Join(",", states));
        return _lists.GetOrAdd(key, _ =>
        {
            var where = new List<string>();
            if (query.Queue is not null) where.Add("queue = $1");
            if (query.Kind is not null) where.Add("kind = $2");
            if (states.Length > 0)
            {
                var stored = states.Where(st => st is not (JobState.Available or JobState.Scheduled)).Select(st => $"'{StateCodec.ToText(st)}'").ToList();
                var any = new List<string>();
                if (stored.Count > 0) any.Add(stored.Count == 1 ? $"state = {stored[0]}" : $"state IN ({string.Join(", ", stored)})");
                if (states.Contains(JobState.Available) && states.Contains(JobState.Scheduled)) any.Add("state = 'available'");
                else if (states.Contains(JobState.Available)) any.Add("(state = 'available' AND run_at <= coalesce($8, now()))");
                else if (states.Contains(JobState.Scheduled)) any.Add("(state = 'available' AND run_at > coalesce($8, now()))");
                where.Add(any.Count == 1 ? any[0] : "(" + string.Join(" OR ", any) + ")");
            }

            if (query.CreatedFrom is not null) where.Add("created_at >= $4");
            if (query.CreatedBefore is not null) where.Add("created_at < $5");
            if (query.BeforeId is not null) where.Add("id < $6");
            if (query.ParentsOf is not null) where.Add("id IN (SELECT d.parent_id FROM {schema}.job_dependencies d WHERE d.child_id = $9)");
            if (query.BatchId is not null) where.Add("batch_id = $10");
            // A key is in one of three partial indexes, by its scope and the job's state (the two unique
            // ones, and migration 0023's of finished jobs): one branch per index, so each is read.
            if (query.UniqueKey is not null)
                where.Add("((unique_key = $11 AND unique_any_state) OR (unique_key = $11 AND NOT unique_any_state AND state IN ('waiting', 'available', 'running'))"
                          + " OR (unique_key = $11 AND NOT unique_any_state AND state IN ('succeeded', 'cancelled', 'dead', 'expired')))");
            // Text, not a pattern: strpos, so % and _ are plain characters. C# twin: JobListQuery.Matches.
            if (query.ErrorContains is not null)
                where.Add("errors <> '[]'::jsonb AND EXISTS (SELECT 1 FROM jsonb_array_elements(errors) e WHERE strpos(lower(e.value->>'message'), lower($12)) > 0)");
            if (query.FromId is not null) where.Add("id >= $13");
            // Unused parameters are still bound (one binder for every variant): typed here so PostgreSQL knows them.
            where.Add("($3::text[] IS NULL OR true) AND ($1::text IS NULL OR true) AND ($2::text IS NULL OR true) AND ($4::timestamptz IS NULL OR true) AND ($5::timestamptz IS NULL OR true) AND ($6::bigint IS NULL OR true) AND ($9::bigint IS NULL OR true) AND ($10::bigint IS NULL OR true)"
                      + " AND ($11::text IS NULL OR true) AND ($12::text IS NULL OR true) AND ($13::bigint IS NULL OR true)");
            return _select + _schema.Apply(" WHERE " + string.Join(" AND ", where) + " ORDER BY id DESC LIMIT $7");
        });
    }

    public NpgsqlCommand Command(NpgsqlDataSource dataSource, long jobId, DateTimeOffset? now)
    {
        var command = dataSource.CreateCommand(Sql);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = jobId });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        return command;
    }

    public NpgsqlCommand ListCommand(NpgsqlDataSource dataSource, JobListQuery query, DateTimeOffset? now)
    {
        var command = dataSource.CreateCommand(ListSql(query));
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.Queue ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.Kind ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter
        {
            Value = query.States is { Count: > 0 } states ? states.Select(StateCodec.VisibleText).ToArray() : DBNull.Value,
            NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text,
        });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.CreatedFrom?.ToUniversalTime() ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.CreatedBefore?.ToUniversalTime() ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.BeforeId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = query.Limit });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.ParentsOf ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.BatchId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.UniqueKey ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.ErrorContains ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)query.FromId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        return command;
    }

    /// <summary>Every job the reader holds.</summary>
    public static async Task<IReadOnlyList<JobInfo>> ReadAllAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var jobs = new List<JobInfo>();
        while (await ReadAsync(reader, cancellationToken).ConfigureAwait(false) is { } job) jobs.Add(job);
        return jobs;
    }

    /// <summary>The job, or null when there is none.</summary>
    public static async Task<JobInfo?> ReadAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) return null;
        var now = reader.GetFieldValue<DateTimeOffset>(Now);
        string? Text(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
        DateTimeOffset? Time(int i) => reader.IsDBNull(i) ? null : reader.GetFieldValue<DateTimeOffset>(i);
        return new JobInfo
        {
            Id = reader.GetInt64(Id),
            Queue = reader.GetString(Queue),
            Kind = reader.GetString(Kind),
            PayloadJson = Text(Payload),
            State = JobTransitions.Visible(StateCodec.Parse(reader.GetString(State)), reader.GetFieldValue<DateTimeOffset>(RunAt), now),
            Priority = reader.GetInt16(Priority),
            Attempt = reader.GetInt32(Attempt),
            MaxAttempts = reader.GetInt32(MaxAttempts),
            RunAt = reader.GetFieldValue<DateTimeOffset>(RunAt),
            CreatedAt = reader.GetFieldValue<DateTimeOffset>(CreatedAt),
            AttemptedAt = Time(AttemptedAt),
            FinalizedAt = Time(FinalizedAt),
            LockedBy = Text(LockedBy),
            LeaseExpiresAt = Time(LeaseExpires),
            CancellationRequested = reader.GetBoolean(CancelRequested),
            UniqueKey = Text(UniqueKey),
            Errors = JobTransitions.ErrorsFromJson(reader.GetString(Errors)),
            Command = Text(CommandColumn),
            Allocation = AllocationColumns.Read(reader, Allocation),
            Timeout = TimeoutColumn.Read(reader, TimeoutMs),
            Snoozes = reader.GetInt16(Snoozes),
            PartitionKey = Text(PartitionKey),
            LatestStartAt = Time(LatestStartAt),
            ResultJson = Text(Result),
            PayloadVersion = reader.GetInt16(PayloadVersion),
            BatchId = reader.IsDBNull(BatchId) ? null : reader.GetInt64(BatchId),
            TraceParent = Text(TraceParent),
            Progress = ProgressColumns.Read(reader, Progress),
            CommandHash = Text(CommandHash),
            Description = Text(Description),
            EffectivePriority = reader.GetInt16(EffectivePriority),
            PendingParents = reader.GetInt32(PendingParents),
            OnParentFailure = StateCodec.ParsePolicy(reader.GetString(OnParentFailure)),
            Parents = Links(reader.GetString(Parents), now),
            Children = Links(reader.GetString(Children), now),
        };
    }

    private static JobLink[] Links(string json, DateTimeOffset now)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.EnumerateArray()
            .Select(e => new JobLink(e[0].GetInt64(), JobTransitions.Visible(StateCodec.Parse(e[1].GetString()!), e[2].GetDateTimeOffset(), now)))
            .ToArray();
    }
}
