namespace Scheduling;

/// <summary>
/// Run history kept in memory, and the default estimator over it (the same statistic and fallback
/// chain as the PostgreSQL store). For tests, demos and consumers' unit tests.
/// </summary>
public sealed class InMemoryRunHistory : IRunHistoryStore, IResourceEstimator
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<RunOutcome>> _byDefinition = new(StringComparer.Ordinal);
    private readonly AraOptions _options;
    private readonly TimeProvider _time;

    /// <summary>Creates an empty history.</summary>
    public InMemoryRunHistory(AraOptions? options = null, TimeProvider? timeProvider = null)
    {
        _options = options ?? new AraOptions();
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Every recorded run still kept, oldest first.</summary>
    public IReadOnlyList<RunOutcome> Runs
    {
        get { lock (_gate) return _byDefinition.Values.SelectMany(r => r).OrderBy(r => r.FinishedAt).ToArray(); }
    }

    /// <inheritdoc />
    public ValueTask RecordAsync(IReadOnlyList<RunOutcome> outcomes, CancellationToken cancellationToken = default)
    {
        Record(outcomes);
        return ValueTask.CompletedTask;
    }

    /// <summary>Records runs at once (the in-memory queue calls it while its acknowledgement is applied).</summary>
    internal void Record(IReadOnlyList<RunOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        lock (_gate)
        {
            foreach (var outcome in outcomes)
            {
                if (!_byDefinition.TryGetValue(outcome.DefinitionId, out var runs)) _byDefinition[outcome.DefinitionId] = runs = [];
                runs.Add(outcome);
            }
        }
    }

    /// <inheritdoc />
    public ValueTask<int> PruneAsync(TimeSpan olderThan, int batchSize, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(olderThan, TimeSpan.Zero);
        var finishedBefore = _time.GetUtcNow() - olderThan;
        var deleted = 0;
        lock (_gate)
        {
            foreach (var (definition, runs) in _byDefinition.ToArray())
            {
                var room = batchSize - deleted;
                if (room <= 0) break;
                var removed = 0;
                runs.RemoveAll(r => r.FinishedAt < finishedBefore && removed++ < room);
                deleted += Math.Min(removed, room);
                if (runs.Count == 0) _byDefinition.Remove(definition);
            }
        }

        return ValueTask.FromResult(deleted);
    }

    /// <inheritdoc />
    public ValueTask<ResourceEstimate?> EstimateAsync(EstimationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        List<RunOutcome> runs;
        lock (_gate) runs = _byDefinition.TryGetValue(request.DefinitionId, out var kept) ? [.. kept] : [];
        return ValueTask.FromResult(HistoryLevels.Estimate(request, _options, _time.GetUtcNow(), level => level switch
        {
            AllocationSource.CommandHistory => runs.Where(r => r.CommandHash == request.CommandHash),
            AllocationSource.NormalizedCommandHistory => request.NormalizedCommandHash is null ? [] : runs.Where(r => r.NormalizedCommandHash == request.NormalizedCommandHash),
            _ => runs,
        }));
    }
}
