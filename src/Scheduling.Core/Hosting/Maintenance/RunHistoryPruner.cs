using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>
/// Deletes run history older than the estimator's window (<see cref="HistoryEstimatorOptions.Window"/>),
/// in bounded batches: runs the estimates can no longer use, so the history does not grow without
/// bound on a host that runs for months.
/// </summary>
internal sealed class RunHistoryPruner(IRunHistoryStore history, SchedulingOptions options, TimeProvider time, ILogger logger)
    : PeriodicService(time, logger)
{
    protected override TimeSpan Interval => options.RetentionInterval;

    public override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var total = 0;
        for (var round = 0; round < RetentionPruner.MaxBatchesPerRound; round++)
        {
            var deleted = await history.PruneAsync(options.Ara.Estimator.Window, options.RetentionBatchSize, cancellationToken).ConfigureAwait(false);
            total += deleted;
            if (deleted < options.RetentionBatchSize) break;
        }

        if (total > 0) Log.RunHistoryPruned(Logger, total, options.Ara.Estimator.Window);
    }

    protected override void OnFailure(Exception exception, TimeSpan retryIn) => Log.PurgeFailed(Logger, exception);
}
