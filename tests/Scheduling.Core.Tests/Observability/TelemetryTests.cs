using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Core.Tests.Observability;

public sealed class TelemetryTests
{
    private static readonly ActivitySource TestSource = new("Scheduling.Tests.Root");

    private static ServiceProvider Host(string queue, Action<SchedulingBuilder> handlers)
    {
        var services = new ServiceCollection().AddLogging();
        services.AddScheduling(s =>
        {
            s.Configure(o =>
            {
                o.AddQueue(queue, 4);
                o.LeaseDuration = TimeSpan.FromSeconds(3);
                o.HeartbeatInterval = TimeSpan.FromSeconds(1);
                o.StatsInterval = TimeSpan.FromMilliseconds(200);
                o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(5), MaxDelay = TimeSpan.FromMilliseconds(20) };
            });
            handlers(s);
        });
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task Every_processed_job_has_a_consumer_span_whose_parent_is_its_enqueue_span_including_retries()
    {
        var spans = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is "Scheduling" or "Scheduling.Tests.Root",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Add,
        };
        ActivitySource.AddActivityListener(listener);
        var queue = $"trace-{Guid.NewGuid():N}"[..20];
        var attempts = new ConcurrentDictionary<long, int>();
        await using var provider = Host(queue, s => s.AddHandler<int>("traced", (ctx, _) =>
            attempts.AddOrUpdate(ctx.Job.Id, 1, (_, n) => n + 1) == 1 && ctx.Payload % 3 == 0 ? throw new InvalidOperationException("first try fails") : Task.CompletedTask));
        var host = provider.GetServices<IHostedService>().Single();
        await host.StartAsync(CancellationToken.None);
        var jobs = provider.GetRequiredService<IJobQueue>();

        var producers = new Dictionary<long, ActivityContext>();
        ActivityTraceId traceId;
        using (var root = TestSource.StartActivity("request"))
        {
            traceId = root!.TraceId;
            for (var i = 0; i < 9; i++)
            {
                var id = (await jobs.EnqueueAsync(new JobRequest("traced", i) { Queue = queue })).JobId;
                producers[id] = spans.Single(s => s.Kind == ActivityKind.Producer && s.GetTagItem("messaging.message.id") as string == id.ToString(System.Globalization.CultureInfo.InvariantCulture) && s.TraceId == traceId).Context;
            }
        }

        await Eventually.HoldsAsync(() => spans.Count(s => s.Kind == ActivityKind.Consumer && s.TraceId == traceId) == 12, "9 jobs and 3 retries are processed");
        await host.StopAsync(CancellationToken.None);

        var consumers = spans.Where(s => s.Kind == ActivityKind.Consumer && s.TraceId == traceId).ToList();
        foreach (var (id, producer) in producers)
        {
            var mine = consumers.Where(c => c.GetTagItem("messaging.message.id") as string == id.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.NotEmpty(mine);
            Assert.All(mine, c => Assert.Equal(producer.SpanId, c.ParentSpanId));
            Assert.All(mine, c => Assert.Single(c.Links));
            Assert.Equal(Enumerable.Range(1, mine.Count), mine.Select(c => (int)c.GetTagItem("scheduling.job.attempt")!).Order());
        }

        Assert.Equal(3, consumers.Count(c => c.Status == ActivityStatusCode.Error));
        var stored = (await jobs.GetJobAsync(producers.Keys.First()))!;
        Assert.Equal(traceId.ToHexString(), stored.TraceId); // what an operator's tools link to
        Assert.Equal(producers[stored.Id].SpanId.ToHexString(), stored.TraceParent![36..52]);
        Assert.All(consumers, c => Assert.Equal($"process {queue}", c.DisplayName));
        Assert.All(consumers, c => Assert.Equal("scheduling", c.GetTagItem("messaging.system")));
    }

    [Fact]
    public async Task Metrics_match_a_scripted_run()
    {
        var queue = $"metrics-{Guid.NewGuid():N}"[..20];
        var counts = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == "Scheduling") l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag.Key == "queue" && (string?)tag.Value == queue) counts.AddOrUpdate(instrument.Name, value, (_, n) => n + value);
        });
        listener.Start();
        var flaky = new ConcurrentDictionary<long, int>();
        await using var provider = Host(queue, s => s
            .AddHandler<int>("ok", (_, _) => Task.CompletedTask)
            .AddHandler<int>("flaky", (ctx, _) => flaky.AddOrUpdate(ctx.Job.Id, 1, (_, n) => n + 1) == 1 ? throw new InvalidOperationException("once") : Task.CompletedTask)
            .AddHandler<int>("bad", (_, _) => throw new InvalidOperationException("always")));
        var host = provider.GetServices<IHostedService>().Single();
        await host.StartAsync(CancellationToken.None);
        var jobs = provider.GetRequiredService<IJobQueue>();

        await jobs.EnqueueManyAsync([
            .. Enumerable.Range(0, 10).Select(i => new JobRequest("ok", i) { Queue = queue }),
            .. Enumerable.Range(0, 4).Select(i => new JobRequest("flaky", i) { Queue = queue, MaxAttempts = 3 }),
            .. Enumerable.Range(0, 2).Select(i => new JobRequest("bad", i) { Queue = queue, MaxAttempts = 2 }),
        ]);
        await Eventually.HoldsAsync(() => counts.GetValueOrDefault("scheduling.jobs.succeeded") == 14 && counts.GetValueOrDefault("scheduling.jobs.dead") == 2, "the run finishes");
        await host.StopAsync(CancellationToken.None);

        Assert.Equal(16, counts["scheduling.jobs.enqueued"]);
        Assert.Equal(22, counts["scheduling.jobs.acquired"]); // 16 first attempts + 4 flaky retries + 2 bad retries
        Assert.Equal(8, counts["scheduling.jobs.failed"]);
        Assert.Equal(6, counts["scheduling.jobs.retried"]);
        Assert.Equal(2, counts["scheduling.jobs.dead"]);
        Assert.Equal(14, counts["scheduling.jobs.succeeded"]);
    }

    [Fact]
    public async Task A_failure_after_cancellation_was_requested_is_counted_as_cancelled_not_retried()
    {
        var queue = $"cancel-{Guid.NewGuid():N}"[..20];
        using var counts = new Hosting.Roles.MetricCounts(queue);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var proceed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var provider = Host(queue, s => s.AddHandler<int>("stubborn", async (_, _) =>
        {
            started.SetResult();
            await proceed.Task; // ignores its token: it fails on its own, after the cancel was asked for
            throw new InvalidOperationException("failed anyway");
        }));
        var host = provider.GetServices<IHostedService>().Single();
        await host.StartAsync(CancellationToken.None);
        var jobs = provider.GetRequiredService<IJobQueue>();
        var id = (await jobs.EnqueueAsync(new JobRequest("stubborn", 1) { Queue = queue, MaxAttempts = 5 })).JobId;
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(CancelOutcome.CancellationRequested, await jobs.CancelAsync(id));
        proceed.SetResult();
        await Eventually.HoldsAsync(async () => (await jobs.GetJobAsync(id))!.State == JobState.Cancelled, "the failed attempt ends the job cancelled");
        await Eventually.HoldsAsync(() => counts["cancelled"] == 1, "the outcome is counted");
        await host.StopAsync(CancellationToken.None);

        Assert.Equal(1, counts["failed"]);
        Assert.Equal(0, counts["retried"]);
        Assert.Equal(0, counts["dead"]);
    }

    [Fact]
    public async Task The_health_check_reports_a_running_host_healthy_and_a_stopped_one_degraded()
    {
        var queue = $"health-{Guid.NewGuid():N}"[..20];
        await using var provider = Host(queue, s => s.AddHandler<int>("ok", (_, _) => Task.CompletedTask));
        var host = provider.GetServices<IHostedService>().Single();
        var check = provider.GetRequiredService<SchedulingHealthCheck>();
        await host.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(async () => (await check.CheckHealthAsync(new HealthCheckContext())).Status == HealthStatus.Healthy, "the host is healthy");

        await host.StopAsync(CancellationToken.None);

        var stopped = await check.CheckHealthAsync(new HealthCheckContext());
        Assert.Equal(HealthStatus.Degraded, stopped.Status);
        Assert.Contains("not running", stopped.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_health_check_is_unhealthy_when_the_store_cannot_be_read()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IJobQueue>(new BrokenQueue());
        services.AddScheduling();
        await using var provider = services.BuildServiceProvider();

        var result = await provider.GetRequiredService<SchedulingHealthCheck>().CheckHealthAsync(new HealthCheckContext());

        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.IsType<TimeoutException>(result.Exception);
    }

    private sealed class BrokenQueue : IJobQueue
    {
        public ValueTask<IReadOnlyList<QueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken = default) => throw new TimeoutException("database unreachable");
        public ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<CancelOutcome> CancelAsync(long jobId, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<bool> RedriveAsync(long jobId, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<IReadOnlyList<JobInfo>> ListJobsAsync(JobListQuery query, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<bool> PauseQueueAsync(string queue, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<QueueLimits> SetQueueLimitsAsync(string queue, QueueLimits limits, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<BatchResult> EnqueueBatchAsync(BatchRequest batch, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<IReadOnlyList<EnqueueResult>> AddToBatchAsync(long batchId, IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<BatchInfo?> GetBatchAsync(long batchId, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<bool> ResumeQueueAsync(string queue, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<IReadOnlyList<WorkerHostInfo>> ListHostsAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<IReadOnlyList<QueueActivity>> GetActivityAsync(TimeSpan window, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<long?> CountAheadAsync(long jobId, int cap = 10_000, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }
}
