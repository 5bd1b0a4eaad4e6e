namespace Scheduling;

/// <summary>A store that can forget finished jobs; the worker host prunes through it so memory and tables stay bounded.</summary>
public interface IJobRetention
{
    /// <summary>Deletes up to <paramref name="batchSize"/> jobs that finished (succeeded, cancelled, dead) before <paramref name="finishedBefore"/>.</summary>
    /// <returns>How many were deleted; fewer than the batch means nothing older is left.</returns>
    ValueTask<int> PurgeFinishedAsync(DateTimeOffset finishedBefore, int batchSize, CancellationToken cancellationToken = default);
}
