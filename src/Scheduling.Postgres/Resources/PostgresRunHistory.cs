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
        var schema = new PostgresSchema(storeOptions.Schema, "storeOptions.Schema");
        _migrations = new MigrationGate(new PostgresMigrator(dataSource, schema), storeOptions.ApplyMigrations);
        _queries = new RunHistoryQueries(schema);
    }

    /// <inheritdoc />
    public async ValueTask<ResourceEstimate?> EstimateAsync(EstimationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        await _migrations.EnsureAsync(cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        await using var command = _queries.EstimateCommand(_dataSource, request, now - _options.Estimator.Window, _options);
        Dictionary<AllocationSource, List<RunOutcome>> byLevel;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            byLevel = await RunHistoryQueries.ReadRunsByLevelAsync(reader, request, cancellationToken).ConfigureAwait(false);

        return HistoryLevels.Estimate(request, _options, now, level => byLevel.GetValueOrDefault(level) ?? []);
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
    public async ValueTask<int> PruneAsync(DateTimeOffset finishedBefore, int batchSize, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        await _migrations.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using var command = _queries.PruneCommand(_dataSource, finishedBefore, batchSize);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
