using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Scheduling.Core.Tests.Hosting.Roles;

/// <summary>Sums the library's counters for one queue (tests run in parallel, each with its own queue name).</summary>
internal sealed class MetricCounts : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _counts = new();

    public MetricCounts(string queue)
    {
        _listener.InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == "Scheduling") l.EnableMeasurementEvents(instrument); };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag.Key == "queue" && (string?)tag.Value == queue) _counts.AddOrUpdate(instrument.Name, value, (_, n) => n + value);
        });
        _listener.Start();
    }

    public long this[string name] => _counts.GetValueOrDefault("scheduling.jobs." + name);

    public void Dispose() => _listener.Dispose();
}
