using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Scheduling.Postgres;

/// <summary>Settings of the PostgreSQL job store; each setting's allowed range is its <c>[Range]</c> attribute, checked at start-up.</summary>
public sealed class PostgresQueueOptions
{
    /// <summary>The configuration section these options are bound from.</summary>
    public const string Section = "Scheduling:Postgres";

    /// <summary>
    /// The service key under which a keyed <see cref="NpgsqlDataSource"/> is taken for the queue
    /// (<c>services.AddKeyedSingleton&lt;NpgsqlDataSource&gt;(PostgresQueueOptions.DataSourceKey, …)</c>), after
    /// <see cref="UseDataSource"/> and before any connection string.
    /// </summary>
    public const string DataSourceKey = "Scheduling";

    /// <summary>
    /// The name of a connection string in the host's configuration (<c>ConnectionStrings:{name}</c>),
    /// used when no data source and no <see cref="ConnectionString"/> is given.
    /// </summary>
    public string? ConnectionStringName { get; set; }

    /// <summary>
    /// Use the unkeyed <see cref="NpgsqlDataSource"/> registered in the container (typically the
    /// application's own database), when no data source, keyed source or connection string is given.
    /// Off by default, so a data source another part of the application registered never takes the
    /// jobs schema into its database unasked.
    /// </summary>
    public bool UseRegisteredDataSource { get; set; }

    /// <summary>
    /// The connection string, used when no data source is given (<see cref="UseDataSource"/>, the keyed
    /// <see cref="DataSourceKey"/> service) and it wins over <see cref="ConnectionStringName"/>. The
    /// data source built from it prepares the queue's statements automatically and skips the session
    /// reset when a connection goes back to the pool, unless the string sets <c>Max Auto Prepare</c>
    /// or <c>No Reset On Close</c> itself.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>Uses <paramref name="dataSource"/> (owned by the caller); it wins over <see cref="ConnectionString"/> and the keyed service.</summary>
    /// <returns>These options, for chaining.</returns>
    public PostgresQueueOptions UseDataSource(NpgsqlDataSource dataSource)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        _dataSource = dataSource;
        return this;
    }

    /// <summary>The data source given with <see cref="UseDataSource"/>, if any.</summary>
    /// <remarks>A field behind a method, not a property: the configuration binder (and its source generator) bind properties, and a data source is given in code.</remarks>
    internal NpgsqlDataSource? DataSource() => _dataSource;

    private NpgsqlDataSource? _dataSource;

    /// <summary>The schema holding the tables: a plain lowercase identifier (default "scheduling").</summary>
    public string Schema { get; set; } = "scheduling";

    /// <summary>Apply pending migrations before first use (default true).</summary>
    public bool ApplyMigrations { get; set; } = true;

    /// <summary>
    /// True (default): due times and leases follow the database clock, the one authority across
    /// hosts. False: they follow the host's <see cref="TimeProvider"/> (tests with a fake clock).
    /// </summary>
    public bool UseDatabaseClock { get; set; } = true;

    /// <summary>
    /// Send NOTIFY on enqueue so idle workers start at once (default true); false leaves them to poll.
    /// Concurrent enqueues from one process share the notify in flight of their queue (every job is
    /// still followed by one), since notifying transactions commit one at a time.
    /// </summary>
    public bool NotifyOnEnqueue { get; set; } = true;

    /// <summary>Hold one LISTEN connection per host to wake idle workers (default true).</summary>
    public bool ListenForNotifications { get; set; } = true;

    /// <summary>The most expired leases rescued in one statement (default 1,000).</summary>
    [Range(1, 100_000)]
    public int RescueBatchSize { get; set; } = 1000;

    /// <summary>How often the host reads the storage report and warns about vacuum falling behind (default 5 min).</summary>
    [TimeSpanRange("00:00:01", "1.00:00:00")]
    public TimeSpan StorageCheckInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Warn when a table has more dead tuples than this and than live ones (default 100,000).</summary>
    [Range(1L, long.MaxValue)]
    public long DeadTupleWarning { get; set; } = 100_000;

    /// <summary>Warn when a transaction has been open longer than this (default 10 min).</summary>
    [TimeSpanRange("00:00:01", "30.00:00:00")]
    public TimeSpan OldTransactionWarning { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long a batch of acknowledgements waits for a row another transaction holds (an
    /// application's open transaction enqueueing a child of a running job) before it gives up, so
    /// the host's other acknowledgements are written at once and only the held one is retried
    /// apart (default 1 s).
    /// </summary>
    [TimeSpanRange("00:00:00.010", "00:10:00")]
    public TimeSpan AckLockTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Bulk enqueues of at least this many jobs without unique keys use binary COPY (default 16).</summary>
    [Range(1, int.MaxValue)]
    public int CopyThreshold { get; set; } = 16;
}

/// <summary>The ranges of <see cref="PostgresQueueOptions"/>, generated from their attributes.</summary>
[OptionsValidator]
internal sealed partial class PostgresQueueOptionsRanges : IValidateOptions<PostgresQueueOptions>;

/// <summary>Checks <see cref="PostgresQueueOptions"/>: the generated range checks and the schema name.</summary>
internal sealed class PostgresQueueOptionsValidator : IValidateOptions<PostgresQueueOptions>
{
    private static readonly PostgresQueueOptionsRanges Ranges = new();

    public ValidateOptionsResult Validate(string? name, PostgresQueueOptions options)
    {
        var errors = new List<string>();
        GeneratedValidation.AddFailures(Ranges.Validate(PostgresQueueOptions.Section, options), PostgresQueueOptions.Section, errors);
        try { PostgresSchema.Validate(options.Schema, nameof(options.Schema)); }
        catch (ArgumentException ex) { errors.Add($"Scheduling:Postgres:Schema: {ex.Message}"); }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
