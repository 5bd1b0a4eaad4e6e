using Microsoft.Extensions.Diagnostics.HealthChecks;
using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Scheduling.Hosting;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Core.Tests.Hosting;

public sealed class WorkerHostTests
{
    public sealed record Greeting(string Name);

    public sealed class GreetingHandler(ConcurrentBag<string> seen) : IJobHandler<Greeting>
    {
        public Task HandleAsync(JobContext<Greeting> context, CancellationToken cancellationToken)
        {
            seen.Add(context.Payload.Name);
            return Task.CompletedTask;
        }
    }

    private static IHost BuildHost(Action<SchedulingBuilder> configure, Action<SchedulingOptions>? options = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("SCHEDULING_TEST_LOG") == "1") builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddSingleton(new ConcurrentBag<string>());
        builder.Services.AddScheduling(scheduling =>
        {
            scheduling.Configure(o =>
            {
                o.LeaseDuration = TimeSpan.FromSeconds(3);
                o.HeartbeatInterval = TimeSpan.FromMilliseconds(100);
                o.RescueInterval = TimeSpan.FromMilliseconds(200);
                o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) };
                options?.Invoke(o);
            });
            configure(scheduling);
        });
        return builder.Build();
    }

    [Fact]
    public async Task Runs_typed_handlers_retries_failures_and_survives_unknown_kinds()
    {
        var attempts = new ConcurrentDictionary<int, int>();
        using var host = BuildHost(s => s
            .AddHandler<GreetingHandler, Greeting>("greet")
            .AddHandler<int>("flaky", (ctx, _) => attempts.AddOrUpdate(ctx.Payload, 1, (_, n) => n + 1) < 3 ? throw new InvalidOperationException("not yet") : Task.CompletedTask)
            .AddHandler<int>("broken", (_, _) => throw new PermanentJobFailureException("cannot ever work")));
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();

        var greet = await queue.EnqueueManyAsync(Enumerable.Range(0, 50).Select(i => new JobRequest("greet", new Greeting($"n{i}"))).ToArray());
        var flaky = await queue.EnqueueAsync(new JobRequest("flaky", 7) { MaxAttempts = 5 });
        var broken = await queue.EnqueueAsync(new JobRequest("broken", 1));
        var unknown = await queue.EnqueueAsync(new JobRequest("nobody-handles-this") { MaxAttempts = 1 });

        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(flaky.JobId))!.State == JobState.Succeeded, "the flaky job succeeds");
        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(unknown.JobId))!.State == JobState.Dead, "the unknown kind is dead");
        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(greet[^1].JobId))!.State == JobState.Succeeded, "greetings are done");
        await host.StopAsync();

        Assert.Equal(50, host.Services.GetRequiredService<ConcurrentBag<string>>().Distinct().Count());
        Assert.Equal(3, (await queue.GetJobAsync(flaky.JobId))!.Attempt);
        var dead = (await queue.GetJobAsync(broken.JobId))!;
        Assert.Equal((JobState.Dead, 1), (dead.State, dead.Attempt));
        Assert.Contains("cannot ever work", dead.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("No handler is registered for job kind 'nobody-handles-this'", (await queue.GetJobAsync(unknown.JobId))!.Errors[0].Message, StringComparison.Ordinal);
    }

    public sealed class StrictGreetingHandler(ConcurrentBag<string> seen) : IJobHandler<Greeting>
    {
        public Task HandleAsync(JobContext<Greeting> context, CancellationToken cancellationToken)
        {
            seen.Add(context.Payload.Name); // would throw NullReferenceException on a missing payload
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task A_job_without_a_payload_fails_permanently_with_a_clear_error_when_its_handler_takes_a_non_nullable_one()
    {
        var nullable = new ConcurrentBag<string>();
        using var host = BuildHost(s => s
            .AddHandler<StrictGreetingHandler, Greeting>("typed")
            .AddHandler<Greeting>("delegate", (ctx, _) => Task.FromResult(ctx.Payload.Name))
            .AddHandler<Greeting?>("optional", (ctx, _) => { nullable.Add(ctx.Payload?.Name ?? "(none)"); return Task.CompletedTask; }));
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();

        var typed = await queue.EnqueueAsync(new JobRequest("typed") { MaxAttempts = 5 });
        var viaDelegate = await queue.EnqueueAsync(new JobRequest("delegate") { MaxAttempts = 5 });
        var optional = await queue.EnqueueAsync(new JobRequest("optional"));
        foreach (var id in new[] { typed.JobId, viaDelegate.JobId })
            await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(id))!.State == JobState.Dead, "the job without a payload is dead");
        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(optional.JobId))!.State == JobState.Succeeded, "a nullable payload may be missing");
        await host.StopAsync();

        foreach (var (id, kind) in new[] { (typed.JobId, "typed"), (viaDelegate.JobId, "delegate") })
        {
            var dead = (await queue.GetJobAsync(id))!;
            Assert.Equal(1, dead.Attempt); // permanent: not retried
            Assert.Contains($"Job {id} ('{kind}') has no payload, but its handler takes a non-nullable Greeting", dead.Errors[0].Message, StringComparison.Ordinal);
        }

        Assert.Equal("(none)", Assert.Single(nullable));
    }

    [Fact]
    public async Task A_job_past_its_timeout_has_its_handler_cancelled_and_fails_each_attempt_until_dead()
    {
        var attempts = 0;
        using var host = BuildHost(s => s
            .Configure(o => o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(10) })
            .AddHandler<int>("stuck", async (_, ct) =>
            {
                Interlocked.Increment(ref attempts);
                await Task.Delay(Timeout.Infinite, ct); // honours its token
            }));
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        var id = (await queue.EnqueueAsync(new JobRequest("stuck", 1) { Timeout = TimeSpan.FromMilliseconds(100), MaxAttempts = 2 })).JobId;

        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(id))!.State == JobState.Dead, "the job times out on both attempts");
        var job = (await queue.GetJobAsync(id))!;
        Assert.Equal(2, job.Errors.Count);
        Assert.All(job.Errors, e => Assert.StartsWith("The attempt timed out after 0.1 s", e.Message, StringComparison.Ordinal));
        Assert.Equal(2, attempts);
        await host.StopAsync();
    }

    [Fact]
    public async Task Cancelling_a_running_job_reaches_its_handler_token()
    {
        var started = new TaskCompletionSource();
        using var host = BuildHost(s => s.AddHandler<int>("long", async (_, ct) =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        }));
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        var id = (await queue.EnqueueAsync(new JobRequest("long", 1))).JobId;
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(CancelOutcome.CancellationRequested, await queue.CancelAsync(id));

        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(id))!.State == JobState.Cancelled, "the running job is cancelled");
        await host.StopAsync();
    }

    [Fact]
    public async Task Shutdown_lets_short_jobs_finish_and_releases_jobs_that_outlast_the_timeout()
    {
        var started = new CountdownEvent(2);
        using var host = BuildHost(
            s => s
                .AddHandler<int>("short", async (_, _) => { started.Signal(); await Task.Delay(100, CancellationToken.None); })
                .AddHandler<int>("endless", async (_, ct) => { started.Signal(); await Task.Delay(Timeout.Infinite, ct); }),
            o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(500));
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        var shortJob = (await queue.EnqueueAsync(new JobRequest("short", 1))).JobId;
        var endless = (await queue.EnqueueAsync(new JobRequest("endless", 1))).JobId;
        await Eventually.HoldsAsync(() => started.CurrentCount == 0, "both jobs started");

        await host.StopAsync();

        Assert.Equal(JobState.Succeeded, (await queue.GetJobAsync(shortJob))!.State);
        var released = (await queue.GetJobAsync(endless))!;
        Assert.Equal((JobState.Available, 0), (released.State, released.Attempt));
    }

    [Fact]
    public async Task Jobs_fetched_ahead_while_every_slot_hangs_are_given_back_uncharged_within_half_a_lease()
    {
        var hung = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(
            s => s.AddHandler<int>("hang", async (_, ct) => { hung.TrySetResult(); await Task.Delay(Timeout.Infinite, ct); }),
            o =>
            {
                o.AddQueue("default", concurrency: 1);
                o.Queues["default"].Prefetch = 10;
                o.Queues["default"].FetchBatchSize = 10;
                o.LeaseDuration = TimeSpan.FromSeconds(2);
                o.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
                o.PollInterval = TimeSpan.FromMinutes(1); // nothing fetches again soon: what goes back stays available
                o.ShutdownTimeout = TimeSpan.FromMilliseconds(100);
            });
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        var ids = await queue.EnqueueManyAsync(Enumerable.Range(0, 10).Select(i => new JobRequest("hang", i)).ToArray());
        await hung.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // The nine waiting behind the hung job go back (the store would otherwise see them expire and charge them).
        await Eventually.HoldsAsync(async () =>
        {
            var states = await Task.WhenAll(ids.Select(async id => (await queue.GetJobAsync(id.JobId))!));
            return states.Count(j => j.State == JobState.Available && j.Attempt == 0) == 9;
        }, "the buffered jobs are back, uncharged");
        await host.StopAsync();
    }

    [Fact]
    public async Task Invalid_options_fail_start_up_naming_the_setting()
    {
        using var host = BuildHost(_ => { }, o =>
        {
            o.HeartbeatInterval = TimeSpan.FromSeconds(10);
            o.AddQueue("bad queue", concurrency: 0);
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(ex.Failures, f => f.Contains("Scheduling:HeartbeatInterval", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("Scheduling:Queues:bad queue:Concurrency must be between 1 and 10000", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("Scheduling:Queues:bad queue: Queue name 'bad queue' contains ' '", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Every_range_comes_from_its_attribute_and_is_named_by_its_configuration_key()
    {
        using var host = BuildHost(_ => { }, o =>
        {
            o.LeaseDuration = TimeSpan.FromDays(2);
            o.AckBatchSize = 0;
            o.Queue.MaxErrorsKept = 5000;
            o.Queue.Retry.BaseDelay = TimeSpan.FromSeconds(-1);
            o.Queue.Retry.Jitter = (RetryJitter)7;
            o.Ara.Estimator.Quantile = 0;
            o.Ara.CeilingMemoryMb = 256;
            o.AddQueueGroup(0, new QueueShare("a", 1));
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Scheduling:LeaseDuration must be between 00:00:01 and 1.00:00:00.", ex.Failures);
        Assert.Contains("Scheduling:AckBatchSize must be between 1 and 10000.", ex.Failures);
        Assert.Contains("Scheduling:Queue:MaxErrorsKept must be between 1 and 1000.", ex.Failures);
        Assert.Contains("Scheduling:Queue:Retry:BaseDelay must be between 00:00:00 and 1.00:00:00.", ex.Failures);
        Assert.Contains("Scheduling:Queue:Retry:Jitter is invalid.", ex.Failures);
        Assert.Contains("Scheduling:Ara:Estimator:Quantile must be between 0 exclusive and 1.", ex.Failures);
        Assert.Contains("Scheduling:Ara:CeilingMemoryMb must be at least FloorMemoryMb (512) (was 256).", ex.Failures);
        Assert.Contains("Scheduling:QueueGroups:0:Concurrency must be between 1 and 10000.", ex.Failures);
    }

    [Fact]
    public async Task A_queue_group_works_every_queue_in_it_and_runs_a_graph_in_order()
    {
        var order = new ConcurrentQueue<string>();
        using var host = BuildHost(
            s => s.AddHandler<string>("step", (ctx, _) => { order.Enqueue(ctx.Payload); return Task.CompletedTask; }),
            o => o.AddQueueGroup(4, new QueueShare("reports", 3), new QueueShare("emails", 1)));
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();

        var ids = await queue.EnqueueManyAsync(
        [
            new JobRequest("step", "extract") { Queue = "reports", LocalKey = "extract" },
            new JobRequest("step", "notify") { Queue = "emails", LocalKey = "notify", DependsOn = [JobDependency.OnRequest("load")] },
            new JobRequest("step", "load") { Queue = "reports", LocalKey = "load", DependsOn = [JobDependency.OnRequest("extract")] },
        ]);
        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(ids[1].JobId))!.State == JobState.Succeeded, "the last step of the graph ran");
        await host.StopAsync();

        Assert.Equal(["extract", "load", "notify"], order.ToArray());
    }

    [Fact]
    public async Task With_immediate_acks_and_no_prefetch_each_slot_takes_its_next_job_with_its_acknowledgement()
    {
        var runs = new ConcurrentDictionary<int, int>();
        using var host = BuildHost(
            s => s.AddHandler<int>("n", (ctx, _) => runs.AddOrUpdate(ctx.Payload, 1, (_, n) => n + 1) == 1 && ctx.Payload % 10 == 0
                ? throw new InvalidOperationException("first attempt of every tenth job fails")
                : Task.CompletedTask),
            o =>
            {
                o.AddQueue("default", concurrency: 4);
                o.Queues["default"].FetchBatchSize = 1;
                o.Queues["default"].Prefetch = 4;
                o.AckFlushInterval = TimeSpan.Zero;
            });
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        var ids = await queue.EnqueueManyAsync(Enumerable.Range(0, 300).Select(i => new JobRequest("n", i) { MaxAttempts = 3 }).ToArray());

        await Eventually.HoldsAsync(async () =>
        {
            foreach (var id in ids) if ((await queue.GetJobAsync(id.JobId))!.State != JobState.Succeeded) return false;
            return true;
        }, "every job succeeded");
        await host.StopAsync();

        Assert.Equal(300, runs.Count);
        Assert.All(runs, r => Assert.Equal(r.Key % 10 == 0 ? 2 : 1, r.Value)); // once, or twice after the planned failure
    }

    [Fact]
    public async Task A_queue_worked_twice_fails_start_up_naming_both_settings()
    {
        using var host = BuildHost(_ => { }, o =>
        {
            o.AddQueue("reports");
            o.AddQueueGroup(2, new QueueShare("reports", 2), new QueueShare("emails", 0));
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(ex.Failures, f => f.Contains("Scheduling:QueueGroups:0:Weights:reports: the queue 'reports' is already worked by Scheduling:Queues:reports", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("Scheduling:QueueGroups:0:Weights:emails must be between 1 and 1000 (was 0)", StringComparison.Ordinal));
    }

    [Fact]
    public void Adding_scheduling_twice_is_harmless_and_a_consumers_queue_wins()
    {
        var services = new ServiceCollection();
        var mine = new InMemoryJobQueue();
        services.AddSingleton<IJobQueue>(mine);
        services.AddScheduling();
        services.AddScheduling();
        services.AddLogging();
        using var provider = services.BuildServiceProvider();

        Assert.Same(mine, provider.GetRequiredService<IJobQueue>());
        Assert.Same(mine, provider.GetRequiredService<IJobWorkerStore>()); // the workers use the same store's other side
        Assert.Single(services, d => d.ServiceType == typeof(IJobQueue));
        Assert.Single(services, d => d.ServiceType == typeof(IJobWorkerStore));
        Assert.Single(provider.GetServices<IHostedService>());
    }

    [Fact]
    public async Task A_queue_without_a_worker_side_serves_a_host_that_only_enqueues_and_is_named_when_workers_need_it()
    {
        var services = new ServiceCollection().AddLogging();
        var clientOnly = new ClientOnlyQueue(new InMemoryJobQueue());
        services.AddSingleton<IJobQueue>(clientOnly);
        services.AddScheduling(s => s.Configure(o => o.RunWorkers = false));
        await using var provider = services.BuildServiceProvider();
        var host = provider.GetServices<IHostedService>().Single();

        await host.StartAsync(CancellationToken.None);
        Assert.True((await provider.GetRequiredService<IJobQueue>().EnqueueAsync(new JobRequest("k"))).Created);
        await host.StopAsync(CancellationToken.None);

        var missing = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IJobWorkerStore>());
        Assert.Contains("ClientOnlyQueue", missing.Message, StringComparison.Ordinal);
        Assert.Contains("RunWorkers", missing.Message, StringComparison.Ordinal);
    }

    private sealed class ClientOnlyQueue(IJobQueue inner) : IJobQueue
    {
        public ValueTask<EnqueueResult> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default) => inner.EnqueueAsync(request, cancellationToken);
        public ValueTask<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default) => inner.EnqueueManyAsync(requests, cancellationToken);
        public ValueTask<CancelOutcome> CancelAsync(long jobId, CancellationToken cancellationToken = default) => inner.CancelAsync(jobId, cancellationToken);
        public ValueTask<bool> RedriveAsync(long jobId, CancellationToken cancellationToken = default) => inner.RedriveAsync(jobId, cancellationToken);
        public ValueTask<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default) => inner.GetJobAsync(jobId, cancellationToken);
        public ValueTask<IReadOnlyList<JobInfo>> ListJobsAsync(JobListQuery query, CancellationToken cancellationToken = default) => inner.ListJobsAsync(query, cancellationToken);
        public ValueTask<bool> PauseQueueAsync(string queue, CancellationToken cancellationToken = default) => inner.PauseQueueAsync(queue, cancellationToken);
        public ValueTask<bool> ResumeQueueAsync(string queue, CancellationToken cancellationToken = default) => inner.ResumeQueueAsync(queue, cancellationToken);
        public ValueTask<QueueLimits> SetQueueLimitsAsync(string queue, QueueLimits limits, CancellationToken cancellationToken = default) => inner.SetQueueLimitsAsync(queue, limits, cancellationToken);
        public ValueTask<BatchResult> EnqueueBatchAsync(BatchRequest batch, CancellationToken cancellationToken = default) => inner.EnqueueBatchAsync(batch, cancellationToken);
        public ValueTask<IReadOnlyList<EnqueueResult>> AddToBatchAsync(long batchId, IReadOnlyList<JobRequest> jobs, CancellationToken cancellationToken = default) => inner.AddToBatchAsync(batchId, jobs, cancellationToken);
        public ValueTask<BatchInfo?> GetBatchAsync(long batchId, CancellationToken cancellationToken = default) => inner.GetBatchAsync(batchId, cancellationToken);
        public ValueTask<IReadOnlyList<QueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken = default) => inner.GetQueueStatsAsync(cancellationToken);
        public ValueTask<IReadOnlyList<WorkerHostInfo>> ListHostsAsync(CancellationToken cancellationToken = default) => inner.ListHostsAsync(cancellationToken);
        public ValueTask<IReadOnlyList<QueueActivity>> GetActivityAsync(TimeSpan window, CancellationToken cancellationToken = default) => inner.GetActivityAsync(window, cancellationToken);
        public ValueTask<long?> CountAheadAsync(long jobId, int cap = 10_000, CancellationToken cancellationToken = default) => inner.CountAheadAsync(jobId, cap, cancellationToken);
    }

    [Fact]
    public async Task A_running_host_is_live_with_its_capacity_and_a_job_larger_than_it_is_reported_not_left_silent()
    {
        using var host = BuildHost(s => s.AddHandler<int>("sized", (_, _) => Task.CompletedTask), o => o.Capacity = new ResourceCapacity(MemoryMb: 1_000));
        var worker = host.Services.GetServices<IHostedService>().OfType<WorkerHost>().Single();
        var check = host.Services.GetRequiredService<SchedulingHealthCheck>();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        await host.StartAsync();

        await Eventually.HoldsAsync(async () => (await queue.ListHostsAsync()).Count == 1, "the host reports itself");
        var me = Assert.Single(await queue.ListHostsAsync());
        Assert.Equal((worker.WorkerId, JobRequest.DefaultQueue, 1_000), (me.WorkerId, Assert.Single(me.Queues), me.Capacity!.MemoryMb));

        JobRequest Sized(int memoryMb) => new("sized", memoryMb) { Command = $"work {memoryMb}", Definition = new JobDefinition($"d{memoryMb}", memoryMb, 100, 0) };
        var small = await queue.EnqueueAsync(Sized(800));
        var large = await queue.EnqueueAsync(Sized(4_000));
        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(small.JobId))!.State == JobState.Succeeded, "the job that fits runs");

        var health = await check.CheckHealthAsync(new HealthCheckContext());
        Assert.Equal(HealthStatus.Degraded, health.Status);
        Assert.Contains("holds 1 job(s) larger than any of its 1 live host(s) can hold", health.Description, StringComparison.Ordinal);
        Assert.Equal(1L, health.Data[$"oversized:{JobRequest.DefaultQueue}"]);
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(large.JobId))!.State);

        await host.StopAsync();
        Assert.Empty(await queue.ListHostsAsync()); // a stopping host takes itself out
        Assert.Equal(0L, (await queue.GetQueueStatsAsync()).Single().Oversized); // with no host, the queue lacks workers, not capacity
    }

    [Fact]
    public void Handler_registration_rejects_an_invalid_kind()
    {
        var builder = new ServiceCollection().AddScheduling();
        var ex = Assert.Throws<ArgumentException>(() => builder.AddHandler<int>("", (_, _) => Task.CompletedTask));
        Assert.Equal("kind", ex.ParamName);
    }
}
