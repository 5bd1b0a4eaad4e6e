using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>Deletes finished jobs past their retention in bounded batches, so tables and memory stay flat over long runs.</summary>
internal sealed class RetentionPruner(IJobWorkerStore store, TimeSpan retention, SchedulingOptions options, TimeProvider time, ILogger logger)
    : PeriodicService(time, logger)
{
    /// <summary>At most this many batches a round, so one round cannot hold the store for long.</summary>
    public const int MaxBatchesPerRound = 100;

    protected override TimeSpan Interval => options.RetentionInterval;

    public override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var total = 0;
        for (var round = 0; round < MaxBatchesPerRound; round++)
        {
            var deleted = await store.PurgeFinishedAsync(retention, options.RetentionBatchSize, cancellationToken).ConfigureAwait(false);
            total += deleted;
            if (deleted < options.RetentionBatchSize) break;
        }

        if (total > 0) Log.Purged(Logger, total, retention);
    }

    protected override void OnFailure(Exception exception, TimeSpan retryIn) => Log.PurgeFailed(Logger, exception);
}
