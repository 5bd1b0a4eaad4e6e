namespace Scheduling.Internal;

/// <summary>The fallback chain shared by the history stores: command, normalised command, definition.</summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class HistoryLevels
{
    /// <summary>The levels, most specific first.</summary>
    public static readonly AllocationSource[] Chain = [AllocationSource.CommandHistory, AllocationSource.NormalizedCommandHistory, AllocationSource.DefinitionHistory];

    /// <summary>The estimate of the first level with enough history, or null when none has.</summary>
    public static ResourceEstimate? Estimate(EstimationRequest request, AraOptions options, DateTimeOffset now, Func<AllocationSource, IEnumerable<RunOutcome>> runsAt)
    {
        foreach (var level in Chain)
        {
            if (level == AllocationSource.NormalizedCommandHistory && request.NormalizedCommandHash is null) continue;
            if (level == AllocationSource.DefinitionHistory && !options.UseDefinitionHistory) continue;
            var samples = runsAt(level).Select(ToSample).ToList();
            var estimate = HistoryEstimate.Compute(samples, level, options.Estimator, now, request.Definition.CpuMillicores);
            if (estimate is not null) return estimate;
        }

        return null;
    }

    /// <summary>A recorded run as an estimator sample.</summary>
    public static RunSample ToSample(RunOutcome run) => new(run.FinishedAt, run.AllocatedMemoryMb, run.PeakMemoryMb, run.PeakCpuMillicores, run.OomKilled, run.Duration);
}
