namespace Scheduling;

/// <summary>
/// A worker host as the job store knows it: the queues it serves and what it can hold. A running host
/// reports itself when it starts and every heartbeat interval after (<see cref="IJobWorkerStore.ReportHostAsync"/>);
/// one that stops reporting (a killed process) is gone once its last report expires.
/// </summary>
/// <param name="WorkerId">The host's worker id.</param>
/// <param name="Queues">The queues it serves.</param>
/// <param name="Capacity">What it declared it can hold (<see cref="SchedulingOptions.Capacity"/>); null: unlimited.</param>
public sealed record WorkerHostInfo(string WorkerId, IReadOnlyList<string> Queues, ResourceCapacity? Capacity)
{
    /// <summary>When it first reported, on the store's clock (set by the store).</summary>
    public DateTimeOffset StartedAt { get; init; }

    /// <summary>When it last reported, on the store's clock (set by the store).</summary>
    public DateTimeOffset SeenAt { get; init; }

    /// <summary>When its last report runs out unless it reports again (set by the store).</summary>
    public DateTimeOffset ExpiresAt { get; init; }

    /// <summary>Whether it serves <paramref name="queue"/>.</summary>
    /// <param name="queue">The queue.</param>
    /// <returns>True when <paramref name="queue"/> is one of <see cref="Queues"/>.</returns>
    public bool Serves(string queue) => Queues.Contains(queue, StringComparer.Ordinal);

    /// <summary>
    /// Whether a job of <paramref name="queue"/> given <paramref name="allocation"/> is larger than every
    /// host of <paramref name="liveHosts"/> that serves the queue can hold: it would wait until a larger host
    /// comes. False when no host serves the queue (that queue lacks workers, not capacity). The stores'
    /// <see cref="QueueStats.Oversized"/> count is this rule (its SQL twin is in PostgreSQL's queue statistics).
    /// </summary>
    /// <param name="allocation">The job's allocation; null needs nothing.</param>
    /// <param name="queue">The job's queue.</param>
    /// <param name="liveHosts">The hosts whose reports have not expired.</param>
    /// <returns>True when some host serves the queue and none can hold the job.</returns>
    public static bool FitsNone(ResourceAllocation? allocation, string queue, IEnumerable<WorkerHostInfo> liveHosts)
    {
        var served = false;
        foreach (var host in liveHosts)
        {
            if (!host.Serves(queue)) continue;
            if (host.Capacity is null || host.Capacity.Fits(allocation)) return false;
            served = true;
        }

        return served;
    }
}
