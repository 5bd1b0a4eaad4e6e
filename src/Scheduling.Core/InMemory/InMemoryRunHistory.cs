namespace Scheduling;

/// <summary>
/// Run history kept in memory, and the default estimator over it (the same statistic and fallback
/// chain as the PostgreSQL store). For tests, demos and consumers' unit tests.
/// </summary>
public sealed class InMemoryRunHistory : IRunHistoryStore, IResourceEstimator
{
    private readonly Lock _gate = new();
    private readonly List<RunOutcome> _runs = [];
    private readonly AraOptions _options;
    private readonly TimeProvider _time;

    /// <summary>Creates an empty history.</summary>
    public InMemoryRunHistory(AraOptions? options = null, TimeProvider? timeProvider = null)
    {
        _options = options ?? new AraOptions();
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Every recorded run, oldest first.</summary>
    public IReadOnlyList<RunOutcome> Runs
    {
        get { lock (_gate) return _runs.ToArray(); }
    }

    /// <inheritdoc />
    public ValueTask RecordAsync(IReadOnlyList<RunOutcome> outcomes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        lock (_gate) _runs.AddRange(outcomes);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<ResourceEstimate?> EstimateAsync(EstimationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        List<RunOutcome> runs;
        lock (_gate) runs = _runs.Where(r => r.DefinitionId == request.DefinitionId).ToList();
        return ValueTask.FromResult(HistoryLevels.Estimate(request, _options, _time.GetUtcNow(), level => level switch
        {
            AllocationSource.CommandHistory => runs.Where(r => r.CommandHash == request.CommandHash),
            AllocationSource.NormalizedCommandHistory => request.NormalizedCommandHash is null ? [] : runs.Where(r => r.NormalizedCommandHash == request.NormalizedCommandHash),
            _ => runs,
        }));
    }
}
