using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// Leases due jobs: one queue, or several split by weight. A materialised
/// <c>FOR UPDATE SKIP LOCKED</c> pick on the fetch index, then one <c>UPDATE … RETURNING</c> by primary
/// key; the rows come back in queue order. The statement, its binder and its row reader.
/// </summary>
internal sealed class AcquireJobs
{
    // Parameters of both statements, as $1..$7 (the single-queue statement uses $1..$5), then, in a
    // capacity-aware claim, the host's capacity and what is free (memory, CPU, GPUs each; NULL: unlimited).
    private const int Queue = 0, MaxJobs = 1, Worker = 2, Now = 3, LeaseDuration = 4, TotalJobs = 5, Weights = 6;
    private const int SingleCount = LeaseDuration + 1, SharedCount = Weights + 1, CapacityCount = 6;

    // The columns the lease returns, and their ordinals.
    private static readonly string Returned = "j.id, j.queue, j.kind, j.payload, j.priority, j.attempt, j.max_attempts, j.run_at, j.created_at, j.lease_token, j.lease_expires_at, "
        + "j.command, j.trace_parent, j.trace_state, j.sort_rank, j.sort_at, " + AllocationColumns.Qualified("j") + ", j.timeout_ms, j.snoozes, j.payload_version, j.batch_id";
    private const int Id = 0, QueueName = 1, Kind = 2, Payload = 3, Priority = 4, Attempt = 5, MaxAttempts = 6, RunAt = 7, CreatedAt = 8, Token = 9, LeaseExpires = 10,
        CommandColumn = 11, TraceParent = 12, TraceState = 13, Allocation = 16, TimeoutMs = Allocation + AllocationColumns.Count, Snoozes = TimeoutMs + 1, PayloadVersion = Snoozes + 1, BatchId = PayloadVersion + 1;

    /// <summary>The tail of both statements: the leased rows in queue order (UPDATE … RETURNING keeps none).</summary>
    public const string OrderedTail = "SELECT * FROM leased ORDER BY sort_rank DESC, sort_at, id";

    public AcquireJobs(PostgresSchema schema)
    {
        // Leases the jobs of the CTE named, by primary key whatever the planner guesses of it.
        static string Lease(string source) => $"""
            leased AS (
                UPDATE {"{schema}"}.jobs j
                SET state = 'running', attempt = j.attempt + 1, started = false, locked_by = $3, lease_token = gen_random_uuid(),
                    lease_expires_at = coalesce($4, now()) + $5, attempted_at = coalesce($4, now())
                WHERE j.id = ANY (ARRAY(SELECT id FROM {source}))
                RETURNING {Returned})
            {OrderedTail}
            """;
        var leasePicked = Lease("picked");

        // A capacity-aware claim (ResourceCapacity.FittingPrefix is the rule's other home): due jobs that
        // could never fit the host are left to others, and of the picked ones, in acquisition order, the
        // longest run whose allocations together fit what is free. Those beyond it are unlocked at commit.
        static string P(int ordinal) => "$" + (ordinal + 1);
        static string Fits(int first, string memory, string cpu, string gpus) =>
            $"{memory} <= coalesce({P(first)}, 2147483647) AND {cpu} <= coalesce({P(first + 1)}, 2147483647) AND {gpus} <= coalesce({P(first + 2)}, 2147483647)";
        static string FitsHost(int capacity) => " AND " + Fits(capacity, "coalesce(memory_mb, 0)", "coalesce(cpu_millicores, 0)", "coalesce(gpus, 0)");
        static string Fitting(int capacity) => $"""
            fitting AS (
                SELECT id FROM (
                    SELECT j.id, sum(coalesce(j.memory_mb, 0)) OVER w AS memory_mb, sum(coalesce(j.cpu_millicores, 0)) OVER w AS cpu_millicores, sum(coalesce(j.gpus, 0)) OVER w AS gpus
                    FROM {"{schema}"}.jobs j WHERE j.id = ANY (ARRAY(SELECT id FROM picked))
                    WINDOW w AS (ORDER BY j.sort_rank DESC, j.sort_at, j.id ROWS UNBOUNDED PRECEDING)) AS running_sum
                WHERE {Fits(capacity + 3, "memory_mb", "cpu_millicores", "gpus")}),
            {Lease("fitting")}
            """;
        // The due jobs of one queue in acquisition order: exactly the fetch index's equality column and
        // order, less any past its latest start; none while the queue is paused or limited (a one-time
        // probe of the queues table, not a per-row test).
        static string Due(string queue, string also = "") => $"""
            SELECT id FROM {"{schema}"}.jobs
            WHERE state = 'available' AND queue = {queue} AND run_at <= coalesce($4, now()){also}
              AND (latest_start_at IS NULL OR latest_start_at >= coalesce($4, now()))
              AND NOT EXISTS (SELECT 1 FROM {"{schema}"}.queues c WHERE c.queue = {queue} AND (c.paused_at IS NOT NULL OR c.limited))
            ORDER BY sort_rank DESC, sort_at, id
            """;
        // A limited queue's pick (claim_limited), behind the same probe the other way round: for a queue
        // without limits the function is never called (the probe is a one-time filter).
        static string Limited(string queue, string quota) => $"""
            SELECT unnest({"{schema}"}.claim_limited({queue}, {quota}, coalesce($4, now()))) AS id
            WHERE EXISTS (SELECT 1 FROM {"{schema}"}.queues c WHERE c.queue = {queue} AND c.paused_at IS NULL AND c.limited)
            """;

        string SingleSql(string also, string tail) => schema.Apply($"""
            WITH picked AS MATERIALIZED (
                SELECT id FROM ({Due("$1", also)}
                LIMIT $2
                FOR UPDATE SKIP LOCKED) AS plain
                UNION ALL
                {Limited("$1", "$2")}),
            {tail}
            """);
        Single = SingleSql("", leasePicked);
        SingleFitting = SingleSql(FitsHost(SingleCount), Fitting(SingleCount));

        // Each queue first takes its quota; queues that filled it share what the others left, the
        // n-th extra job of a queue of weight w ranked at n / w (FairShare.SpareRank). A limited queue
        // takes at most its quota.
        string SharedSql(string also, string tail) => schema.Apply($"""
            WITH q AS (SELECT * FROM unnest($1::text[], $2::integer[], $7::integer[]) AS q(queue, quota, weight)),
            by_quota AS MATERIALIZED (
                SELECT c.id, q.queue FROM q CROSS JOIN LATERAL (
                    SELECT id FROM ({Due("q.queue", also)}
                    LIMIT q.quota
                    FOR UPDATE SKIP LOCKED) AS plain
                    UNION ALL
                    {Limited("q.queue", "q.quota")}) c),
            spare AS (SELECT $6 - (SELECT count(*) FROM by_quota) AS n),
            more AS MATERIALIZED (
                SELECT c.id, row_number() OVER (PARTITION BY q.queue ORDER BY c.ord)::float8 / q.weight AS rank
                FROM q CROSS JOIN spare CROSS JOIN LATERAL (
                    SELECT id, row_number() OVER () AS ord FROM (
                        {Due("q.queue", also + " AND id NOT IN (SELECT f.id FROM by_quota f WHERE f.queue = q.queue)")}
                        LIMIT spare.n
                        FOR UPDATE SKIP LOCKED) l) c
                WHERE spare.n > 0 AND (SELECT count(*) FROM by_quota f WHERE f.queue = q.queue) >= q.quota),
            picked AS (
                SELECT id FROM by_quota
                UNION ALL
                (SELECT id FROM more ORDER BY rank, id LIMIT (SELECT n FROM spare))),
            {tail}
            """);
        Shared = SharedSql("", leasePicked);
        SharedFitting = SharedSql(FitsHost(SharedCount), Fitting(SharedCount));
    }

    /// <summary>One queue: $1 queue, $2 max jobs, $3 worker, $4 now, $5 lease duration.</summary>
    public string Single { get; }

    /// <summary>Several queues: $1 queues, $2 their quotas, $3 worker, $4 now, $5 lease duration, $6 max jobs in all, $7 weights.</summary>
    public string Shared { get; }

    /// <summary><see cref="Single"/> for a host that declared its capacity: then $6-$8 the capacity, $9-$11 what is free.</summary>
    public string SingleFitting { get; }

    /// <summary><see cref="Shared"/> for a host that declared its capacity: then $8-$10 the capacity, $11-$13 what is free.</summary>
    public string SharedFitting { get; }

    /// <param name="request">What to acquire (validated).</param>
    /// <param name="random">Deals the remainders of the weighted split.</param>
    /// <param name="now">The time to write (null: the database clock).</param>
    public NpgsqlBatchCommand Command(AcquireRequest request, Random random, DateTimeOffset? now)
    {
        var shared = request.Queues.Count > 1;
        var count = shared ? SharedCount : SingleCount;
        var p = new NpgsqlParameter[count + (request.Capacity is null ? 0 : CapacityCount)];
        if (shared)
        {
            p[Queue] = new NpgsqlParameter<string[]> { TypedValue = request.Queues.Select(q => q.Queue).ToArray() };
            p[MaxJobs] = new NpgsqlParameter<int[]> { TypedValue = FairShare.Quotas(request.Queues, request.MaxJobs, random) };
            p[TotalJobs] = new NpgsqlParameter<int> { TypedValue = request.MaxJobs };
            p[Weights] = new NpgsqlParameter<int[]> { TypedValue = request.Queues.Select(q => q.Weight).ToArray() };
        }
        else
        {
            p[Queue] = new NpgsqlParameter<string> { TypedValue = request.Queue, NpgsqlDbType = NpgsqlDbType.Text };
            p[MaxJobs] = new NpgsqlParameter<int> { TypedValue = request.MaxJobs };
        }

        p[Worker] = new NpgsqlParameter<string> { TypedValue = request.WorkerId, NpgsqlDbType = NpgsqlDbType.Text };
        p[Now] = new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz };
        p[LeaseDuration] = new NpgsqlParameter<TimeSpan> { TypedValue = request.LeaseDuration, NpgsqlDbType = NpgsqlDbType.Interval };
        if (request.Capacity is { } capacity)
        {
            var free = request.Available ?? capacity;
            int?[] amounts = [capacity.MemoryMb, capacity.CpuMillicores, capacity.Gpus, free.MemoryMb, free.CpuMillicores, free.Gpus];
            for (var i = 0; i < CapacityCount; i++)
                p[count + i] = new NpgsqlParameter { Value = (object?)amounts[i] ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer };
        }

        var command = new NpgsqlBatchCommand(request.Capacity is null ? (shared ? Shared : Single) : (shared ? SharedFitting : SingleFitting));
        command.Parameters.AddRange(p);
        return command;
    }

    /// <summary>Reads the leased jobs, in queue order.</summary>
    public static async Task<List<AcquiredJob>> ReadAsync(NpgsqlDataReader reader, int maxJobs, CancellationToken cancellationToken)
    {
        var jobs = new List<AcquiredJob>(maxJobs);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var id = reader.GetInt64(Id);
            jobs.Add(new AcquiredJob
            {
                Id = id,
                Queue = reader.GetString(QueueName),
                Kind = reader.GetString(Kind),
                PayloadJson = reader.IsDBNull(Payload) ? null : reader.GetString(Payload),
                Priority = reader.GetInt16(Priority),
                RunAt = reader.GetFieldValue<DateTimeOffset>(RunAt),
                CreatedAt = reader.GetFieldValue<DateTimeOffset>(CreatedAt),
                Lease = new JobLease(id, reader.GetGuid(Token), reader.GetInt32(Attempt), reader.GetInt32(MaxAttempts)),
                LeaseExpiresAt = reader.GetFieldValue<DateTimeOffset>(LeaseExpires),
                Command = reader.IsDBNull(CommandColumn) ? null : reader.GetString(CommandColumn),
                Allocation = AllocationColumns.Read(reader, Allocation),
                TraceParent = reader.IsDBNull(TraceParent) ? null : reader.GetString(TraceParent),
                TraceState = reader.IsDBNull(TraceState) ? null : reader.GetString(TraceState),
                Timeout = TimeoutColumn.Read(reader, TimeoutMs),
                Snoozes = reader.GetInt16(Snoozes),
                PayloadVersion = reader.GetInt16(PayloadVersion),
                BatchId = reader.IsDBNull(BatchId) ? null : reader.GetInt64(BatchId),
            });
        }

        return jobs;
    }
}
