using Npgsql;
using Scheduling.Postgres.Statements;

namespace Scheduling.Postgres;

/// <summary>
/// The run history in PostgreSQL, and the default estimator over it: one round trip per estimate
/// (the three levels of the fallback chain in one statement, each an index range scan limited to
/// the most recent runs), then the shared statistic (<see cref="HistoryEstimate"/>).
/// </summary>
public sealed class PostgresRunHistory : IRunHistoryStore, IResourceEstimator
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly AraOptions _options;
    private readonly TimeProvider _time;
    private readonly StatementClock _clock;
    private readonly RunHistoryQueries _queries;
    private readonly MigrationGate _migrations;

    /// <summary>Creates the store in the schema named by <paramref name="storeOptions"/> (the queue's schema).</summary>
    public PostgresRunHistory(NpgsqlDataSource dataSource, PostgresQueueOptions? storeOptions = null, AraOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        storeOptions ??= new PostgresQueueOptions();
        _dataSource = dataSource;
        _options = options ?? new AraOptions();
        _time = timeProvider ?? TimeProvider.System;
        _clock = new StatementClock(_time, storeOptions.UseDatabaseClock);
        var schema = new PostgresSchema(storeOptions.Schema, "storeOptions.Schema");
        _migrations = new MigrationGate(new PostgresMigrator(dataSource, schema), storeOptions.ApplyMigrations);
        _queries = new RunHistoryQueries(schema);
    }

    /// <inheritdoc />
    public async ValueTask<ResourceEstimate?> EstimateAsync(EstimationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        await _migrations.EnsureAsync(cancellationToken).ConfigureAwait(false);
        // The window and the recency of each run are measured on the clock that dated the runs.
        await using var command = _queries.EstimateCommand(_dataSource, request, _clock.WriteNow(), _options);
        Dictionary<AllocationSource, List<RunOutcome>> byLevel;
        DateTimeOffset? readAt;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            (byLevel, readAt) = await RunHistoryQueries.ReadRunsByLevelAsync(reader, request, cancellationToken).ConfigureAwait(false);

        return HistoryLevels.Estimate(request, _options, readAt ?? _time.GetUtcNow(), level => byLevel.GetValueOrDefault(level) ?? []);
    }

    /// <inheritdoc />
    public async ValueTask RecordAsync(IReadOnlyList<RunOutcome> outcomes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        if (outcomes.Count == 0) return;
        await _migrations.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _queries.RecordCommand(_dataSource, outcomes);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<int> PruneAsync(TimeSpan olderThan, int batchSize, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(olderThan, TimeSpan.Zero);
        await _migrations.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _queries.PruneCommand(_dataSource, olderThan, _clock.WriteNow(), batchSize);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
