using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Scheduling.Postgres;

/// <summary>
/// Bloat and vacuum health of the library's tables: dead tuples, table and index sizes, and what
/// holds vacuum back (the oldest open transaction, the oldest replication slot).
/// </summary>
public sealed record PostgresStorageReport
{
    /// <summary>One row per table of the schema.</summary>
    public required IReadOnlyList<TableStorage> Tables { get; init; }
    /// <summary>The oldest transaction still open on the server (other than this one), if any.</summary>
    public OpenTransaction? OldestTransaction { get; init; }
    /// <summary>The replication slot holding back the oldest xmin, if any.</summary>
    public ReplicationSlotHold? OldestSlot { get; init; }
    /// <summary>The server's <c>autovacuum_naptime</c>: how often vacuum can come back to the queue (5 s recommended).</summary>
    public TimeSpan? AutovacuumNaptime { get; init; }

    /// <summary>The longest naptime that keeps a busy queue's fetch index clean (see docs/operations.md).</summary>
    public static readonly TimeSpan RecommendedMaxNaptime = TimeSpan.FromSeconds(15);

    /// <summary>Reads the report for <paramref name="schema"/>.</summary>
    public static async Task<PostgresStorageReport> ReadAsync(NpgsqlDataSource dataSource, string schema, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        PostgresSchema.Validate(schema, nameof(schema));
        await using var batch = dataSource.CreateBatch();
        var tables = new NpgsqlBatchCommand("""
            SELECT c.relname, coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0), pg_table_size(c.oid), pg_indexes_size(c.oid),
                   greatest(s.last_autovacuum, s.last_vacuum)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
            WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname
            """);
        tables.Parameters.AddWithValue(schema);
        batch.BatchCommands.Add(tables);
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            SELECT pid, coalesce(state, ''), extract(epoch FROM now() - xact_start)::float8, left(coalesce(query, ''), 200)
            FROM pg_stat_activity
            WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)
            ORDER BY xact_start LIMIT 1
            """));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            SELECT slot_name, greatest(coalesce(age(xmin), 0), coalesce(age(catalog_xmin), 0))::bigint
            FROM pg_replication_slots ORDER BY 2 DESC LIMIT 1
            """));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT setting::integer FROM pg_settings WHERE name = 'autovacuum_naptime'"));

        var list = new List<TableStorage>();
        OpenTransaction? oldest = null;
        ReplicationSlotHold? slot = null;
        TimeSpan? naptime = null;
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                list.Add(new TableStorage(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.IsDBNull(5) ? null : reader.GetFieldValue<DateTimeOffset>(5)));
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                oldest = new OpenTransaction(reader.GetInt32(0), reader.GetString(1), TimeSpan.FromSeconds(reader.GetDouble(2)), reader.GetString(3));
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) slot = new ReplicationSlotHold(reader.GetString(0), reader.GetInt64(1));
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) naptime = TimeSpan.FromSeconds(reader.GetInt32(0));
        }

        return new PostgresStorageReport { Tables = list, OldestTransaction = oldest, OldestSlot = slot, AutovacuumNaptime = naptime };
    }
}

/// <summary>One table's size and dead tuples.</summary>
/// <param name="Table">The table.</param>
/// <param name="LiveTuples">Estimated live rows.</param>
/// <param name="DeadTuples">Dead rows waiting for vacuum.</param>
/// <param name="TableBytes">Heap size (with TOAST).</param>
/// <param name="IndexBytes">All its indexes.</param>
/// <param name="LastVacuum">The latest vacuum or autovacuum.</param>
public sealed record TableStorage(string Table, long LiveTuples, long DeadTuples, long TableBytes, long IndexBytes, DateTimeOffset? LastVacuum);

/// <summary>An open transaction that holds back vacuum.</summary>
/// <param name="Pid">Its backend.</param>
/// <param name="State">Its state (e.g. "idle in transaction").</param>
/// <param name="Age">How long it has been open.</param>
/// <param name="Query">Its latest statement, truncated.</param>
public sealed record OpenTransaction(int Pid, string State, TimeSpan Age, string Query);

/// <summary>A replication slot pinning the xmin horizon.</summary>
/// <param name="Slot">The slot.</param>
/// <param name="XminAge">Transactions behind.</param>
public sealed record ReplicationSlotHold(string Slot, long XminAge);

/// <summary>Reads the storage report now and then and warns when vacuum falls behind or something pins the horizon.</summary>
internal sealed class PostgresStorageMonitor(PostgresDataSourceHolder holder, Microsoft.Extensions.Options.IOptions<PostgresQueueOptions> options, TimeProvider time, ILogger<PostgresStorageMonitor>? logger = null) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        new StorageCheck(holder, options.Value, time, (ILogger?)logger ?? NullLogger.Instance).RunAsync(stoppingToken);
}

/// <summary>
/// At start and every <see cref="PostgresQueueOptions.StorageCheckInterval"/>: warns when vacuum falls
/// behind, and when the database's clock and this host's disagree.
/// </summary>
internal sealed partial class StorageCheck(PostgresDataSourceHolder holder, PostgresQueueOptions options, TimeProvider time, ILogger logger) : PeriodicService(time, logger)
{
    /// <summary>How far the clocks may disagree before it is reported (a round trip's error is far smaller).</summary>
    public static readonly TimeSpan ClockSkewWarning = TimeSpan.FromSeconds(2);

    private bool _naptimeReported;
    private bool _skewReported;

    protected override TimeSpan Interval => options.StorageCheckInterval;

    protected override bool RunsAtStart => true;

    public override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var o = options;
        var skew = await ReadClockSkewAsync(cancellationToken).ConfigureAwait(false);
        if (skew.Duration() <= ClockSkewWarning) _skewReported = false;
        else if (!_skewReported)
        {
            _skewReported = true; // once while it lasts
            ClockSkew(Logger, skew.Duration(), skew > TimeSpan.Zero ? "ahead of" : "behind", o.UseDatabaseClock
                ? "due times, leases and retention follow the database's clock, so this host's logs and metrics disagree with the queue by that much"
                : "UseDatabaseClock is false, so this host writes due times and leases by its own clock and disagrees with every other host by that much");
        }

        var report = await PostgresStorageReport.ReadAsync(holder.DataSource, o.Schema, cancellationToken).ConfigureAwait(false);
        foreach (var table in report.Tables.Where(t => t.DeadTuples > o.DeadTupleWarning && t.DeadTuples > t.LiveTuples))
            DeadTuples(Logger, o.Schema, table.Table, table.DeadTuples, table.LiveTuples);
        if (report.OldestTransaction is { } tx && tx.Age > o.OldTransactionWarning)
            OldTransaction(Logger, tx.Pid, tx.State, tx.Age, tx.Query);
        if (report.OldestSlot is { } slot && slot.XminAge > 100_000_000)
            SlotHolding(Logger, slot.Slot, slot.XminAge);
        if (!_naptimeReported && report.AutovacuumNaptime > PostgresStorageReport.RecommendedMaxNaptime)
        {
            _naptimeReported = true; // a server setting: once per host is enough
            SlowNaptime(Logger, report.AutovacuumNaptime.Value, PostgresStorageReport.RecommendedMaxNaptime);
        }
    }

    /// <summary>The database's clock minus this host's, taken at the middle of the round trip.</summary>
    private async Task<TimeSpan> ReadClockSkewAsync(CancellationToken cancellationToken)
    {
        await using var command = holder.DataSource.CreateCommand("SELECT clock_timestamp()");
        var before = Time.GetUtcNow();
        var database = (DateTime)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        var after = Time.GetUtcNow();
        return new DateTimeOffset(database, TimeSpan.Zero) - (before + (after - before) / 2);
    }

    protected override void OnFailure(Exception exception, TimeSpan retryIn) => CheckFailed(Logger, exception);

    [LoggerMessage(1205, LogLevel.Warning, "The database's clock is {Skew} {Direction} this host's: {Consequence}. Synchronise the clocks (NTP)")]
    private static partial void ClockSkew(ILogger logger, TimeSpan skew, string direction, string consequence);

    [LoggerMessage(1200, LogLevel.Warning, "Table {Schema}.{Table} has {Dead} dead tuples against {Live} live: vacuum is behind (see docs/operations.md)")]
    private static partial void DeadTuples(ILogger logger, string schema, string table, long dead, long live);

    [LoggerMessage(1201, LogLevel.Warning, "Transaction of backend {Pid} ({State}) has been open for {Age}: no vacuum can reclaim finished jobs meanwhile. Last statement: {Query}")]
    private static partial void OldTransaction(ILogger logger, int pid, string state, TimeSpan age, string query);

    [LoggerMessage(1202, LogLevel.Warning, "Replication slot {Slot} holds the xmin horizon {Age} transactions back")]
    private static partial void SlotHolding(ILogger logger, string slot, long age);

    [LoggerMessage(1204, LogLevel.Warning, "autovacuum_naptime is {Naptime}: a busy queue piles up dead index entries between vacuums and slows down; set it to {Recommended} or less (see docs/operations.md)")]
    private static partial void SlowNaptime(ILogger logger, TimeSpan naptime, TimeSpan recommended);

    [LoggerMessage(1203, LogLevel.Debug, "Reading the storage report failed")]
    private static partial void CheckFailed(ILogger logger, Exception exception);
}
