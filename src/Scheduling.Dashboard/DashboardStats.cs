namespace Scheduling.Dashboard;

/// <summary>
/// The queue counts and live hosts every viewer shares: read from the store at most once per
/// <see cref="SchedulingDashboardOptions.StatsCacheDuration"/> whatever the number of viewers and
/// refreshes, so an open dashboard never costs a scan per viewer per refresh.
/// </summary>
internal sealed class DashboardStats(IJobQueue queue, SchedulingDashboardOptions options, TimeProvider time) : IDisposable
{
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private volatile Snapshot? _latest;

    /// <summary>What was read, and when.</summary>
    public sealed record Snapshot(IReadOnlyList<QueueStats> Queues, IReadOnlyList<WorkerHostInfo> Hosts, DateTimeOffset ReadAt)
    {
        /// <summary>Jobs finished in the last hour, per queue and minute.</summary>
        public IReadOnlyList<QueueActivity> LastHour { get; init; } = [];
    }

    /// <summary>How many times the store was read (for tests of the cache).</summary>
    public int Reads { get; private set; }

    public async Task<Snapshot> GetAsync(CancellationToken cancellationToken)
    {
        if (Fresh(_latest) is { } fresh) return fresh;
        await _refresh.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Fresh(_latest) is { } other) return other; // another viewer refreshed it meanwhile
            var queues = await queue.GetQueueStatsAsync(cancellationToken).ConfigureAwait(false);
            var hosts = await queue.ListHostsAsync(cancellationToken).ConfigureAwait(false);
            var activity = await queue.GetActivityAsync(TimeSpan.FromHours(1), cancellationToken).ConfigureAwait(false);
            Reads++;
            return _latest = new Snapshot(queues, hosts, time.GetUtcNow()) { LastHour = activity };
        }
        finally
        {
            _refresh.Release();
        }
    }

    /// <summary>Forgets the cached counts, after an action that changed them.</summary>
    public void Invalidate() => _latest = null;

    public void Dispose() => _refresh.Dispose();

    private Snapshot? Fresh(Snapshot? snapshot) => snapshot is not null && time.GetUtcNow() - snapshot.ReadAt < options.StatsCacheDuration ? snapshot : null;
}
