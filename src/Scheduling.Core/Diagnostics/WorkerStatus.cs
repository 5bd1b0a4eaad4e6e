using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Scheduling.Hosting;

/// <summary>
/// What this host's workers are doing, for the gauges and the health check: when each queue last
/// fetched, and the cached queue depths (refreshed in the background, so scraping costs nothing).
/// </summary>
internal sealed class WorkerStatus
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _lastFetch = new(StringComparer.Ordinal);
    private volatile IReadOnlyList<QueueStats> _depths = [];

    public WorkerStatus()
    {
        SchedulingMetrics.Meter.CreateObservableGauge("scheduling.queue.depth", () => Measure(), "{job}", "Active jobs per queue and state (cached; refreshed every StatsInterval).");
        SchedulingMetrics.Meter.CreateObservableGauge("scheduling.queue.oversized", () => MeasureOversized(), "{job}",
            "Jobs per queue whose allocation no live host serving the queue can hold (cached; refreshed every StatsInterval).");
    }

    public string? WorkerId { get; private set; }
    public bool Running { get; private set; }
    public IReadOnlyCollection<string> Queues { get; private set; } = [];
    public DateTimeOffset? DepthsReadAt { get; private set; }
    public Exception? DepthsError { get; private set; }
    public IReadOnlyList<QueueStats> LatestDepths => _depths;
    public IReadOnlyDictionary<string, DateTimeOffset> LastFetch => _lastFetch;

    public void Started(string workerId, IEnumerable<string> queues)
    {
        WorkerId = workerId;
        Queues = queues.ToArray();
        Running = true;
    }

    public void Stopped() => Running = false;

    /// <summary>Set when the acknowledgement writer stopped while the host ran: nothing this host finishes is recorded any more.</summary>
    public Exception? CompleterError { get; private set; }

    public void CompleterStopped(Exception error) => CompleterError = error;

    /// <summary>Why the store refuses this host (<see cref="JobStoreUnavailableException"/>), while it does; null otherwise.</summary>
    public string? StoreRefusal { get; private set; }

    public void StoreRefused(string? reason) => StoreRefusal = reason;

    public void Fetched(string queue, DateTimeOffset at) => _lastFetch[queue] = at;

    public void Depths(IReadOnlyList<QueueStats> depths, DateTimeOffset at)
    {
        _depths = depths;
        DepthsReadAt = at;
        DepthsError = null;
    }

    public void DepthsFailed(Exception error) => DepthsError = error;

    private IEnumerable<Measurement<long>> MeasureOversized() =>
        _depths.Select(q => new Measurement<long>(q.Oversized, new KeyValuePair<string, object?>("queue", q.Queue)));

    private IEnumerable<Measurement<long>> Measure()
    {
        foreach (var q in _depths)
        {
            var queue = new KeyValuePair<string, object?>("queue", q.Queue);
            yield return new Measurement<long>(q.Available, queue, new KeyValuePair<string, object?>("state", "available"));
            yield return new Measurement<long>(q.Scheduled, queue, new KeyValuePair<string, object?>("state", "scheduled"));
            yield return new Measurement<long>(q.Running, queue, new KeyValuePair<string, object?>("state", "running"));
        }
    }
}
