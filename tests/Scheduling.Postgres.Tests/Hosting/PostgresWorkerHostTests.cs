using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests.Hosting;

/// <summary>The worker host end to end against PostgreSQL, wired the way an application wires it.</summary>
public sealed class PostgresWorkerHostTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private IHost BuildHost(string schema, Action<SchedulingBuilder> configure, Action<SchedulingOptions>? options = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddScheduling(scheduling =>
        {
            scheduling.UsePostgres(database.ConnectionString, o => o.Schema = schema);
            scheduling.Configure(o =>
            {
                o.AddQueue("default", concurrency: 8);
                o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) };
                options?.Invoke(o);
            });
            configure(scheduling);
        });
        return builder.Build();
    }

    [Fact]
    public async Task Host_migrates_processes_every_job_once_and_retries_failures()
    {
        var schema = database.NewSchema();
        var runs = new ConcurrentDictionary<int, int>();
        using var host = BuildHost(schema, s => s.AddHandler<int>("work", (ctx, _) =>
        {
            var n = runs.AddOrUpdate(ctx.Payload, 1, (_, c) => c + 1);
            return ctx.Payload % 10 == 0 && n == 1 ? throw new InvalidOperationException("first attempt fails") : Task.CompletedTask;
        }));
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        Assert.IsType<PostgresJobQueue>(queue);

        var ids = await queue.EnqueueManyAsync(Enumerable.Range(0, 500).Select(i => new JobRequest("work", i)).ToArray());
        await Eventually.HoldsAsync(async () => await CountAsync(schema, "succeeded") == 500, "all 500 jobs succeed", TimeSpan.FromSeconds(60));
        await host.StopAsync();

        Assert.Equal(500, runs.Count);
        Assert.All(runs, r => Assert.Equal(r.Key % 10 == 0 ? 2 : 1, r.Value));
        Assert.Equal(2, (await queue.GetJobAsync(ids[0].JobId))!.Attempt);
    }

    [Theory]
    [InlineData(5)] // buffered acknowledgements
    [InlineData(0)] // written at once by each slot
    public async Task Errors_no_database_can_encode_as_thrown_do_not_stop_the_hosts_acknowledgements(int ackFlushMs)
    {
        var schema = database.NewSchema();
        // An emoji cut in half at the length limit, a handler echoing a lone surrogate, a NUL.
        var poison = new Dictionary<int, string>
        {
            // The error kept is the exception's text, "{type}: {message}…", cut at 3,999 characters.
            [1_000] = new string('x', 3_998 - $"{typeof(PermanentJobFailureException).FullName}: ".Length) + "💥 after the limit",
            [1_001] = "bad input: \uD83D",
            [1_002] = "nul \0 inside",
        };
        using var host = BuildHost(schema,
            s => s.AddHandler<int>("work", (ctx, _) => poison.TryGetValue(ctx.Payload, out var message)
                ? throw new PermanentJobFailureException(message)
                : Task.CompletedTask),
            o => o.AckFlushInterval = TimeSpan.FromMilliseconds(ackFlushMs));
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();

        var ids = await queue.EnqueueManyAsync(Enumerable.Range(0, 300).Concat(poison.Keys).Select(i => new JobRequest("work", i)).ToArray());
        await Eventually.HoldsAsync(async () => await CountAsync(schema, "succeeded") == 300 && await CountAsync(schema, "dead") == 3,
            "every ordinary job succeeds and every poison job is dead", TimeSpan.FromSeconds(60));
        await host.StopAsync();

        var strict = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true);
        foreach (var id in ids.Skip(300))
        {
            var error = Assert.Single((await queue.GetJobAsync(id.JobId))!.Errors).Message;
            strict.GetBytes(error); // readable: valid text
            Assert.DoesNotContain('\0', error);
            Assert.True(error.Length <= new JobQueueOptions().MaxErrorLength, $"{error.Length} characters kept");
        }
    }

    [Fact]
    public async Task Notify_wakes_an_idle_worker_long_before_its_poll_interval()
    {
        var schema = database.NewSchema();
        var done = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(schema, s => s.AddHandler<int>("ping", (ctx, _) => { done.TrySetResult(ctx.Job.Id); return Task.CompletedTask; }),
            o => o.PollInterval = TimeSpan.FromMinutes(5));
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        await Eventually.HoldsAsync(async () => await ListenersAsync() > 0, "the host listens");
        await Task.Delay(300); // let the fetch loop go idle on its five-minute poll

        var id = (await queue.EnqueueAsync(new JobRequest("ping", 1))).JobId;

        Assert.Equal(id, await done.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        await host.StopAsync();
    }

    [Fact]
    public async Task Idle_workers_run_every_job_of_many_concurrent_enqueuers_long_before_their_poll_interval()
    {
        // The enqueuers coalesce their wake-ups (at most one notify in flight per queue): every job
        // must still be followed by a notify, or it would wait for the five-minute poll.
        var schema = database.NewSchema();
        var done = new ConcurrentDictionary<int, int>();
        const int jobs = 240;
        using var host = BuildHost(schema, s => s.AddHandler<int>("ping", (ctx, _) => { done.AddOrUpdate(ctx.Payload, 1, (_, n) => n + 1); return Task.CompletedTask; }),
            o => o.PollInterval = TimeSpan.FromMinutes(5));
        await host.StartAsync();
        await Eventually.HoldsAsync(async () => await ListenersAsync() > 0, "the host listens");
        var producer = new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = schema });

        for (var round = 0; round < 3; round++)
        {
            var next = -1;
            var offset = round * jobs;
            await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            {
                for (int i; (i = Interlocked.Increment(ref next)) < jobs;) await producer.EnqueueAsync(new JobRequest("ping", offset + i));
            })));
            await Eventually.HoldsAsync(() => Task.FromResult(done.Count == offset + jobs), $"every job of round {round} runs", TimeSpan.FromSeconds(60));
        }

        await host.StopAsync();
        Assert.All(done.Values, n => Assert.Equal(1, n));
        Assert.Equal(0, producer.Wakes!.FailedSends);
    }

    [Fact]
    public async Task A_host_that_declares_its_capacity_holds_only_the_jobs_that_fit_and_a_smaller_host_leaves_them()
    {
        var schema = database.NewSchema();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var runningMb = 0;
        var peakMb = 0;
        var ranOn = new ConcurrentDictionary<long, string>();
        Func<JobContext<int>, CancellationToken, Task> Handler(string host) => async (ctx, _) =>
        {
            ranOn[ctx.Job.Id] = host;
            var now = Interlocked.Add(ref runningMb, ctx.Job.Allocation!.MemoryMb);
            for (int peak; (peak = Volatile.Read(ref peakMb)) < now && Interlocked.CompareExchange(ref peakMb, now, peak) != peak;) { }
            await release.Task;
            Interlocked.Add(ref runningMb, -ctx.Job.Allocation.MemoryMb);
        };
        // Eight slots each: only capacity can keep them from taking every job at once.
        using var large = BuildHost(schema, s => s.AddHandler<int>("sized", Handler("large")), o => o.Capacity = new ResourceCapacity { MemoryMb = 1_300 });
        using var small = BuildHost(schema, s => s.AddHandler<int>("sized", Handler("small")), o => o.Capacity = new ResourceCapacity { MemoryMb = 500 });
        await large.StartAsync();
        await small.StartAsync();
        var queue = large.Services.GetRequiredService<IJobQueue>();
        var ids = await queue.EnqueueManyAsync(Enumerable.Range(0, 10).Select(i => new JobRequest("sized", i) { Command = $"sized {i}", Definition = new JobDefinition("sized", 600) }).ToArray());

        Assert.Equal(600, (await queue.GetJobAsync(ids[0].JobId))!.Allocation!.MemoryMb); // no history yet: the definition's baseline
        await Eventually.HoldsAsync(() => ranOn.Count == 2, "two 600 MB jobs start on the 1,300 MB host");
        // The host holds (running or buffered) what fits: two leases, not ten; the 500 MB host holds none.
        Assert.Equal(2, await CountAsync(schema, "running"));
        release.SetResult();
        await Eventually.HoldsAsync(async () => await CountAsync(schema, "succeeded") == 10, "every job runs", TimeSpan.FromSeconds(60));
        await small.StopAsync();
        await large.StopAsync();

        Assert.All(ids, id => Assert.Equal("large", ranOn[id.JobId]));
        Assert.InRange(peakMb, 600, 1_200);
    }

    [Fact]
    public async Task An_application_transaction_holding_a_running_parent_stalls_none_of_the_hosts_other_leases()
    {
        var schema = database.NewSchema();
        var runs = new ConcurrentDictionary<long, int>();
        var parentStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finishParent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lease = TimeSpan.FromSeconds(2);
        using var host = BuildHost(schema,
            s => s
                .AddHandler<int>("parent", async (ctx, _) => { runs.AddOrUpdate(ctx.Job.Id, 1, (_, n) => n + 1); parentStarted.TrySetResult(); await finishParent.Task; })
                // Each runs longer than a lease: it survives only if its heartbeats get through.
                .AddHandler<int>("long", async (ctx, _) => { runs.AddOrUpdate(ctx.Job.Id, 1, (_, n) => n + 1); await Task.Delay(TimeSpan.FromSeconds(3), CancellationToken.None); })
                .AddHandler<int>("child", (_, _) => Task.CompletedTask),
            o =>
            {
                o.Queues["default"].Concurrency = 16;
                o.LeaseDuration = lease;
                o.HeartbeatInterval = TimeSpan.FromMilliseconds(400);
                o.RescueInterval = TimeSpan.FromMilliseconds(200);
            });
        await host.StartAsync();
        var queue = (PostgresJobQueue)host.Services.GetRequiredService<IJobQueue>();
        var parent = (await queue.EnqueueAsync(new JobRequest("parent", 0))).JobId;
        await parentStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // The application enqueues a child of the running parent and keeps its transaction open
        // for twice the lease: the parent's row is locked all that time.
        await using var connection = await database.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var child = (await queue.EnqueueAsync(new JobRequest("child", 0) { DependsOn = [JobDependency.OnJob(parent)] }, transaction)).JobId;
        var others = await queue.EnqueueManyAsync(Enumerable.Range(1, 10).Select(i => new JobRequest("long", i)).ToArray());
        await Task.Delay(TimeSpan.FromSeconds(1));
        finishParent.SetResult(); // its acknowledgement meets the held row too
        await Task.Delay(lease * 2);
        await transaction.CommitAsync();

        await Eventually.HoldsAsync(async () => await CountAsync(schema, "succeeded") == 12, "the parent, its child and the ten others succeed", TimeSpan.FromSeconds(60));
        await host.StopAsync();

        foreach (var id in others.Select(o => o.JobId))
        {
            var job = (await queue.GetJobAsync(id))!;
            Assert.Equal(1, runs[id]);
            Assert.Empty(job.Errors); // never rescued
            Assert.Equal(1, job.Attempt);
        }

        Assert.Equal(JobState.Succeeded, (await queue.GetJobAsync(child))!.State);
    }

    [Fact]
    public async Task Stopping_a_host_with_a_deep_prefetch_buffer_gives_every_unstarted_job_back_at_once_uncharged()
    {
        var schema = database.NewSchema();
        using var host = BuildHost(schema, s => s.AddHandler<int>("wait", async (_, ct) => await Task.Delay(Timeout.Infinite, ct)),
            o =>
            {
                o.Queues["default"].Concurrency = 2;
                o.Queues["default"].Prefetch = 3_000; // more than the completer's room (2,000)
                o.Queues["default"].FetchBatchSize = 3_000;
                o.ShutdownTimeout = TimeSpan.FromMilliseconds(100);
            });
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 3_000).Select(i => new JobRequest("wait", i) { MaxAttempts = 1 }).ToArray());
        await Eventually.HoldsAsync(async () => await CountAsync(schema, "running") == 3_000, "the host holds every job", TimeSpan.FromSeconds(60));

        await host.StopAsync();

        // Right after StopAsync: nothing left running, nothing charged, nothing dead.
        Assert.Equal(0, await CountAsync(schema, "running"));
        Assert.Equal(0, await CountAsync(schema, "dead"));
        await using var charged = database.DataSource.CreateCommand($"SELECT count(*) FROM \"{schema}\".jobs WHERE state <> 'available' OR attempt <> 0");
        Assert.Equal(0L, await charged.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Job_released_at_shutdown_is_taken_by_another_host_at_once()
    {
        var schema = database.NewSchema();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var first = BuildHost(schema, s => s.AddHandler<int>("slow", async (_, ct) => { started.TrySetResult(); await Task.Delay(Timeout.Infinite, ct); }),
            o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(200));
        await first.StartAsync();
        var id = (await first.Services.GetRequiredService<IJobQueue>().EnqueueAsync(new JobRequest("slow", 1) { MaxAttempts = 1 })).JobId;
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        var finished = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var second = BuildHost(schema, s => s.AddHandler<int>("slow", (ctx, _) => { finished.TrySetResult(ctx.Job.Attempt); return Task.CompletedTask; }),
            o => o.LeaseDuration = TimeSpan.FromMinutes(10));
        await second.StartAsync();
        await first.StopAsync();

        Assert.Equal(1, await finished.Task.WaitAsync(TimeSpan.FromSeconds(30))); // the released attempt did not count
        await Eventually.HoldsAsync(async () => (await second.Services.GetRequiredService<IJobQueue>().GetJobAsync(id))!.State == JobState.Succeeded, "the job succeeds on the second host");
        await second.StopAsync();
    }

    [Theory]
    [InlineData("Host=h", true, 32)]
    [InlineData("Host=h;No Reset On Close=false;Max Auto Prepare=5", false, 5)]
    [InlineData("Host=h;noresetonclose=false", false, 32)]
    public void A_data_source_built_from_a_connection_string_prepares_and_skips_the_reset_unless_told_otherwise(string connectionString, bool noReset, int maxAutoPrepare)
    {
        var settings = PostgresDataSourceHolder.WithQueueDefaults(new Npgsql.NpgsqlDataSourceBuilder(connectionString)).ConnectionStringBuilder;

        Assert.Equal(noReset, settings.NoResetOnClose);
        Assert.Equal(maxAutoPrepare, settings.MaxAutoPrepare);
    }

    private Task<long> CountAsync(string schema, string state) => database.CountJobsAsync(schema, $"state = '{state}'");

    private async Task<long> ListenersAsync()
    {
        await using var command = database.DataSource.CreateCommand("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()");
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
