using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using Scheduling.Hosting;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Core.Tests.Hosting.Roles;

/// <summary>The host reporter against a fake store: what it reports, and that a store refusing reports costs a log line, not the host.</summary>
public sealed class HostReporterTests
{
    private static readonly WorkerHostInfo Me = new("w1", ["mail", "sms"], new ResourceCapacity(MemoryMb: 2_048));

    [Fact]
    public async Task A_round_reports_the_host_for_one_lease_duration()
    {
        var store = new FakeStore();
        var options = new SchedulingOptions { LeaseDuration = TimeSpan.FromSeconds(45) };
        var reporter = new HostReporter(store, Me, options, TimeProvider.System, new FakeLogger());

        await reporter.RunOnceAsync(CancellationToken.None);
        await reporter.RemoveAsync();

        var (host, ttl) = Assert.Single(store.HostReports);
        Assert.Same(Me, host);
        Assert.Equal(TimeSpan.FromSeconds(45), ttl);
        Assert.Equal(["w1"], store.HostsRemoved);
    }

    [Fact]
    public async Task A_failing_report_is_logged_and_tried_again_next_interval_and_a_failing_removal_does_not_throw()
    {
        var time = new FakeTimeProvider();
        var logger = new FakeLogger();
        var calls = 0;
        var store = new FakeStore
        {
            OnReportHost = _ => { if (Interlocked.Increment(ref calls) == 1) throw new TimeoutException("database unreachable"); },
            OnRemoveHost = _ => throw new TimeoutException("database unreachable"),
        };
        var options = new SchedulingOptions { HeartbeatInterval = TimeSpan.FromSeconds(10) };
        var reporter = new HostReporter(store, Me, options, time, logger);
        using var stop = new CancellationTokenSource();

        var loop = reporter.RunAsync(stop.Token);
        await Eventually.HoldsAsync(() => logger.Collector.Count == 1, "the first report is sent at once, and its failure logged");
        var warning = logger.Collector.LatestRecord;
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("Reporting this host", warning.Message, StringComparison.Ordinal);
        Assert.IsType<TimeoutException>(warning.Exception);

        await Eventually.HoldsAsync(() => { time.Advance(TimeSpan.FromSeconds(10)); return Volatile.Read(ref calls) >= 2; }, "the report is sent again after an interval");
        await stop.CancelAsync();
        await loop;
        Assert.Equal(1, logger.Collector.GetSnapshot().Count(r => r.Level == LogLevel.Warning));

        await reporter.RemoveAsync();
        Assert.Equal(2, logger.Collector.GetSnapshot().Count(r => r.Level == LogLevel.Warning));
    }
}
