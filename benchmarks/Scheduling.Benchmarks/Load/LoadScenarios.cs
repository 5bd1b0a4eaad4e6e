using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Scheduling.Postgres;

namespace Scheduling.Benchmarks.Load;

/// <summary>
/// The load harness's scenarios. Each creates its own schema, runs, verifies in the database that
/// every job reached the expected state exactly once, and drops the schema.
/// </summary>
internal sealed partial class LoadScenarios(string connectionString, int jobs, int workers)
{
    private const string NoOp = "noop";

    public static readonly string[] All = ["enqueue-single", "enqueue-bulk", "raw-insert-single", "raw-copy-bulk", "drain", "drain-single", "latency", "deep", "fanout", "chain", "soak", "raw-batch", "raw-single", "raw-claim-batch", "raw-claim-single", "raw-oneshot-batch", "raw-oneshot-single", "queue-loop", "hangfire"];

    public Task<LoadResult> RunAsync(string scenario, bool traced) => scenario switch
    {
        "enqueue-single" => EnqueueSingleAsync(),
        "enqueue-bulk" => EnqueueBulkAsync(),
        "drain" => DrainAsync("drain", batched: true, traced),
        "drain-single" => DrainAsync("drain-single", batched: false, traced),
        "latency" => LatencyAsync(),
        "deep" => DeepAsync(),
        "fanout" => FanOutAsync(),
        "chain" => ChainAsync(),
        "raw-batch" => RawAsync("raw-batch", 100, oneShot: false),
        "raw-single" => RawAsync("raw-single", 1, oneShot: false),
        "raw-oneshot-batch" => RawAsync("raw-oneshot-batch", 100, oneShot: true),
        "raw-oneshot-single" => RawAsync("raw-oneshot-single", 1, oneShot: true),
        "raw-insert-single" => RawInsertSingleAsync(),
        "raw-copy-bulk" => RawCopyBulkAsync(),
        "raw-claim-batch" => RawClaimAsync("raw-claim-batch", 100),
        "raw-claim-single" => RawClaimAsync("raw-claim-single", 1),
        "queue-loop" => QueueLoopAsync(),
        "hangfire" => HangfireDrain.RunAsync(connectionString, Math.Min(jobs, 20_000), workers),
        "soak" => SoakAsync(),
        "keyed-drain" => LimitedDrainAsync("keyed-drain", new QueueLimits { ConcurrencyPerKey = 4 }),
        "fair-drain" => LimitedDrainAsync("fair-drain", new QueueLimits { FairKeys = true }),
        "rate-accuracy" => RateAccuracyAsync(),
        "tenant-wait" => TenantWaitAsync(fair: true),
        "tenant-wait-plain" => TenantWaitAsync(fair: false),
        _ => throw new ArgumentException($"unknown scenario '{scenario}'; known: {string.Join(", ", All.Concat(Flow))}, all, flow"),
    };

    private async Task<T> WithSchemaAsync<T>(string scenario, Func<NpgsqlDataSource, string, Task<T>> body)
    {
        var schema = $"load_{scenario.Replace('-', '_')}_{Guid.NewGuid().ToString("N")[..6]}";
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.ConnectionStringBuilder.MaxPoolSize = Math.Max(builder.ConnectionStringBuilder.MaxPoolSize, workers * 2 + 10);
        await using var dataSource = PostgresDataSourceHolder.WithQueueDefaults(builder).Build(); // as UsePostgres(connectionString) does
        try
        {
            return await body(dataSource, schema);
        }
        finally
        {
            await using var drop = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            await drop.ExecuteNonQueryAsync();
        }
    }

    /// <summary>A count the harness writes itself (fixed SQL, never input), with an optional text parameter $1.</summary>
    internal static async Task<long> CountAsync(NpgsqlDataSource dataSource, string sql, string? parameter = null)
    {
        await using var command = dataSource.CreateCommand(sql);
        if (parameter is not null) command.Parameters.AddWithValue(parameter);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private Task<LoadResult> EnqueueSingleAsync() => WithSchemaAsync("enqueue-single", async (dataSource, schema) =>
    {
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
        await queue.MigrateAsync();
        var latencies = new ConcurrentBag<double>();
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) < jobs)
            {
                var start = Stopwatch.GetTimestamp();
                await queue.EnqueueAsync(new JobRequest(NoOp));
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        })));
        clock.Stop();
        var all = latencies.ToList();
        var verified = await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'available'") == jobs;
        return new LoadResult("enqueue-single", jobs, workers, clock.Elapsed.TotalSeconds, LoadResult.Percentile(all, 0.5), LoadResult.Percentile(all, 0.99), verified);
    });

    private Task<LoadResult> EnqueueBulkAsync() => WithSchemaAsync("enqueue-bulk", async (dataSource, schema) =>
    {
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
        await queue.MigrateAsync();
        const int batch = 5000;
        var latencies = new List<double>();
        var clock = Stopwatch.StartNew();
        for (var done = 0; done < jobs; done += batch)
        {
            var requests = Enumerable.Range(0, Math.Min(batch, jobs - done)).Select(_ => new JobRequest(NoOp)).ToArray();
            var start = Stopwatch.GetTimestamp();
            await queue.EnqueueManyAsync(requests);
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        clock.Stop();
        var verified = await CountAsync(dataSource, $"SELECT count(DISTINCT id) FROM \"{schema}\".jobs WHERE state = 'available'") == jobs;
        return new LoadResult("enqueue-bulk", jobs, 1, clock.Elapsed.TotalSeconds, LoadResult.Percentile(latencies, 0.5), LoadResult.Percentile(latencies, 0.99), verified)
            { Extra = { ["batch"] = batch } };
    });

    private IHost BuildHost(string schema, Action<SchedulingOptions> configure, Func<JobContext<long>, Task> handler) => BuildHost<long>(schema, configure, handler);

    private IHost BuildHost<T>(string schema, Action<SchedulingOptions> configure, Func<JobContext<T>, Task> handler)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("SCHEDULING_BENCH_LOG") is { } level) // e.g. Warning, to see what a slow run hit
            builder.Logging.AddSimpleConsole().SetMinimumLevel(Enum.Parse<LogLevel>(level));
        builder.Services.AddScheduling(s => s
            .UsePostgres(connectionString, o => o.Schema = schema)
            .Configure(o => { o.AddQueue("default", workers); configure(o); })
            .AddHandler<T>(NoOp, (ctx, _) => handler(ctx)));
        return builder.Build();
    }

    private Task<LoadResult> DrainAsync(string scenario, bool batched, bool traced) => WithSchemaAsync(scenario, async (dataSource, schema) =>
    {
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
        await queue.MigrateAsync();
        for (var done = 0; done < jobs; done += 10_000)
            await queue.EnqueueManyAsync(Enumerable.Range(0, Math.Min(10_000, jobs - done)).Select(_ => new JobRequest(NoOp)).ToArray());

        using var telemetry = traced ? new TelemetrySink() : null;
        var result = await DrainWithHostAsync(scenario, dataSource, schema, o =>
        {
            if (batched) return;
            // The worst case: one job per fetch, nothing fetched ahead, every acknowledgement written at once.
            o.Queues["default"].FetchBatchSize = 1;
            o.Queues["default"].Prefetch = workers;
            o.AckFlushInterval = TimeSpan.Zero;
            o.AckBatchSize = 1;
        });
        if (traced) result.Extra["traced"] = true;
        return result;
    });

    /// <summary>Drains the <c>jobs</c> enqueued jobs with a worker host; done when every acknowledgement is in; verified when each succeeded on its first attempt.</summary>
    private async Task<LoadResult> DrainWithHostAsync(string scenario, NpgsqlDataSource dataSource, string schema, Action<SchedulingOptions> configure)
    {
        var handled = 0;
        var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(schema, configure, _ =>
        {
            if (Interlocked.Increment(ref handled) == jobs) finished.TrySetResult();
            return Task.CompletedTask;
        });
        var clock = Stopwatch.StartNew();
        await host.StartAsync();
        await finished.Task.WaitAsync(TimeSpan.FromMinutes(30));
        while (await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'succeeded'") < jobs) await Task.Delay(2);
        clock.Stop();
        await host.StopAsync();
        var verified = handled == jobs
            && await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'succeeded' AND attempt = 1") == jobs;
        return new LoadResult(scenario, jobs, workers, clock.Elapsed.TotalSeconds, null, null, verified);
    }

    private Task<LoadResult> LatencyAsync() => WithSchemaAsync("latency", async (dataSource, schema) =>
    {
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
        await queue.MigrateAsync();
        var count = Math.Min(jobs, 2000);
        var started = new ConcurrentDictionary<long, long>();
        var signal = new SemaphoreSlim(0);
        using var host = BuildHost(schema, o => o.PollInterval = TimeSpan.FromSeconds(5), ctx =>
        {
            started[ctx.Payload] = Stopwatch.GetTimestamp();
            signal.Release();
            return Task.CompletedTask;
        });
        await host.StartAsync();
        await Task.Delay(500); // the LISTEN connection is up and the fetch loops idle
        var latencies = new List<double>();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            var at = Stopwatch.GetTimestamp();
            await queue.EnqueueAsync(new JobRequest(NoOp, (long)i));
            if (!await signal.WaitAsync(TimeSpan.FromSeconds(30))) break;
            latencies.Add(Stopwatch.GetElapsedTime(at, started[i]).TotalMilliseconds);
            await Task.Delay(1); // idle again between jobs
        }

        clock.Stop();
        await host.StopAsync();
        var verified = latencies.Count == count && await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'succeeded'") == count;
        return new LoadResult("latency", count, workers, clock.Elapsed.TotalSeconds, LoadResult.Percentile(latencies, 0.5), LoadResult.Percentile(latencies, 0.99), verified);
    });

    /// <summary>
    /// Acquire+complete latency of one job with 1,000 jobs in the table, then with <c>--jobs</c>
    /// (1,000,000 for the real figure) more jobs due later in the same queue and as many again
    /// available in four other queues.
    /// </summary>
    private Task<LoadResult> DeepAsync() => WithSchemaAsync("deep", async (dataSource, schema) =>
    {
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
        await queue.MigrateAsync();
        async Task AddAsync(int total, Func<int, JobRequest> request)
        {
            for (var done = 0; done < total; done += 50_000)
                await queue.EnqueueManyAsync(Enumerable.Range(done, Math.Min(50_000, total - done)).Select(request).ToArray());
            await using var analyze = dataSource.CreateCommand($"VACUUM ANALYZE \"{schema}\".jobs");
            await analyze.ExecuteNonQueryAsync();
        }

        async Task TopUpAsync()
        {
            var have = (int)await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'available' AND queue = 'default' AND run_at <= now()");
            await AddAsync(1000 - have, i => new JobRequest(NoOp) { Priority = i % 3 });
        }

        async Task<List<double>> MeasureAsync(int samples)
        {
            var latencies = new List<double>();
            for (var i = 0; i < samples; i++)
            {
                var start = Stopwatch.GetTimestamp();
                var job = await queue.AcquireAsync(new AcquireRequest("default", "deep", 1, TimeSpan.FromMinutes(5)));
                await queue.AcknowledgeAsync([JobAck.Success(job[0].Lease)]);
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }

            return latencies;
        }

        var deepSize = Math.Max(jobs, 2000);
        await TopUpAsync();
        await MeasureAsync(50); // warm up
        await TopUpAsync();
        var shallow = await MeasureAsync(200);
        var clock = Stopwatch.StartNew();
        var later = DateTimeOffset.UtcNow.AddDays(1);
        await AddAsync(deepSize, i => new JobRequest(NoOp) { RunAt = later.AddSeconds(i % 3600) });
        await AddAsync(deepSize, i => new JobRequest(NoOp) { Queue = $"other{i % 4}", Priority = i % 3 });
        await TopUpAsync();
        clock.Stop();
        await MeasureAsync(50);
        var deep = await MeasureAsync(200);
        var ratio = LoadResult.Percentile(deep, 0.5) / LoadResult.Percentile(shallow, 0.5);
        var verified = await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'succeeded'") == 500
            && await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'running'") == 0;
        return new LoadResult("deep", deepSize, 1, clock.Elapsed.TotalSeconds, LoadResult.Percentile(deep, 0.5), LoadResult.Percentile(deep, 0.99), verified)
        {
            Extra = { ["shallow_p50_ms"] = Math.Round(LoadResult.Percentile(shallow, 0.5), 3), ["ratio"] = Math.Round(ratio, 3), ["rows"] = 2 * deepSize + 1000 },
        };
    });

    /// <summary>
    /// One parent and min(--jobs, 10,000) children enqueued as one graph; <c>seconds</c> is the time
    /// from the start of the parent's completion until every child is acquirable (released by the
    /// completing transaction). The children are then drained by a host and verified.
    /// </summary>
    private Task<LoadResult> FanOutAsync() => WithSchemaAsync("fanout", async (dataSource, schema) =>
    {
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
        await queue.MigrateAsync();
        var children = Math.Min(jobs, 10_000);
        var enqueueClock = Stopwatch.StartNew();
        await queue.EnqueueManyAsync([new JobRequest(NoOp, -1L) { LocalKey = "parent" }, .. Enumerable.Range(0, children).Select(i => new JobRequest(NoOp, (long)i) { DependsOn = [JobDependency.OnRequest("parent")] })]);
        enqueueClock.Stop();
        var parent = (await queue.AcquireAsync(new AcquireRequest("default", "fanout", 1, TimeSpan.FromMinutes(5))))[0];

        var clock = Stopwatch.StartNew();
        await queue.CompleteAsync(parent.Lease);
        while (await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'available'") < children) await Task.Delay(1);
        clock.Stop();

        var handled = 0;
        var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(schema, _ => { }, _ =>
        {
            if (Interlocked.Increment(ref handled) == children) finished.TrySetResult();
            return Task.CompletedTask;
        });
        await host.StartAsync();
        await finished.Task.WaitAsync(TimeSpan.FromMinutes(10));
        while (await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'succeeded'") < children + 1) await Task.Delay(2);
        await host.StopAsync();
        var verified = handled == children && await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'succeeded' AND attempt = 1") == children + 1;
        return new LoadResult("fanout", children, workers, clock.Elapsed.TotalSeconds, null, null, verified)
        {
            Extra = { ["enqueue_graph_s"] = Math.Round(enqueueClock.Elapsed.TotalSeconds, 3) },
        };
    });

    /// <summary>
    /// A chain of min(--jobs, 100) jobs, each depending on the previous, run by an idle host;
    /// p50/p99 are the steps from a job's handler returning to its child's handler starting
    /// (the acknowledgement, the release and the wake-up in between).
    /// </summary>
    private Task<LoadResult> ChainAsync() => WithSchemaAsync("chain", async (dataSource, schema) =>
    {
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
        await queue.MigrateAsync();
        var length = Math.Min(jobs, 100);
        var started = new long[length];
        var ended = new long[length];
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(schema, _ => { }, ctx =>
        {
            var i = (int)ctx.Payload;
            started[i] = Stopwatch.GetTimestamp();
            ended[i] = Stopwatch.GetTimestamp();
            if (i == length - 1) done.TrySetResult();
            return Task.CompletedTask;
        });
        await host.StartAsync();
        await Task.Delay(500); // idle workers, LISTEN connected
        var clock = Stopwatch.StartNew();
        await queue.EnqueueManyAsync(Enumerable.Range(0, length).Select(i => new JobRequest(NoOp, (long)i)
        {
            LocalKey = $"j{i}",
            DependsOn = i == 0 ? [] : [JobDependency.OnRequest($"j{i - 1}")],
        }).ToArray());
        await done.Task.WaitAsync(TimeSpan.FromMinutes(5));
        clock.Stop();
        while (await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'succeeded'") < length) await Task.Delay(2);
        await host.StopAsync();
        var steps = Enumerable.Range(1, length - 1).Select(i => Stopwatch.GetElapsedTime(ended[i - 1], started[i]).TotalMilliseconds).ToList();
        var inOrder = Enumerable.Range(1, length - 1).All(i => started[i] > ended[i - 1]);
        var verified = inOrder && await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'succeeded' AND attempt = 1") == length;
        return new LoadResult("chain", length, workers, clock.Elapsed.TotalSeconds, LoadResult.Percentile(steps, 0.5), LoadResult.Percentile(steps, 0.99), verified);
    });

    /// <summary>
    /// N jobs fed steadily through one host with sample handlers: 90 % succeed, 9 % fail once and succeed on retry,
    /// 1 % always fail (dead after two attempts). Memory (the process working set, after a full collection) and
    /// throughput are sampled at every tenth of the run; memory growth compares the last tenth with the
    /// second (the first is warm-up), throughput drift the last three tenths with the three after the warm-up.
    /// </summary>
    private Task<LoadResult> SoakAsync() => WithSchemaAsync("soak", async (dataSource, schema) =>
    {
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
        await queue.MigrateAsync();
        var finished = 0;
        var attempts = new ConcurrentDictionary<long, byte>();
        using var host = BuildHost(schema, o => o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) }, ctx =>
        {
            var n = ctx.Payload % 100;
            var fails = n == 0 || (n < 10 && ctx.Job.Attempt == 1);
            if (!fails || ctx.Job.Attempt == ctx.Job.MaxAttempts) Interlocked.Increment(ref finished);
            return fails ? Task.FromException(new InvalidOperationException("sample failure")) : Task.CompletedTask;
        });
        var checkpoints = new List<(double Seconds, long Heap)>();
        var clock = Stopwatch.StartNew();
        await host.StartAsync();
        // A steady feed, as in production: jobs arrive in batches while the host works, the backlog
        // stays under 40,000, and the table grows only by finished jobs (not a million-row bulk load).
        var producer = Task.Run(async () =>
        {
            for (var done = 0; done < jobs; done += 10_000)
            {
                while (done - Volatile.Read(ref finished) > 30_000) await Task.Delay(5);
                await queue.EnqueueManyAsync(Enumerable.Range(done, Math.Min(10_000, jobs - done)).Select(i => new JobRequest(NoOp, (long)i) { MaxAttempts = 2 }).ToArray());
            }
        });
        for (var next = 1; next <= 10; next++)
        {
            while (Volatile.Read(ref finished) < jobs * next / 10 && clock.Elapsed < TimeSpan.FromHours(1)) await Task.Delay(20);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            checkpoints.Add((clock.Elapsed.TotalSeconds, Environment.WorkingSet));
        }

        await producer;
        // Done when nothing is left active (the partial indexes make this count cheap).
        while (await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state IN ('waiting', 'available', 'running')") > 0) await Task.Delay(200);
        clock.Stop();
        await host.StopAsync();
        var dead = await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'dead' AND attempt = 2");
        var succeeded = await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'succeeded'");
        var verified = dead == jobs / 100 + (jobs % 100 > 0 ? 1 : 0) && succeeded + dead == jobs;
        double Rate(int i) => (jobs / 10.0) / (checkpoints[i].Seconds - (i == 0 ? 0 : checkpoints[i - 1].Seconds));
        var memoryGrowth = (checkpoints[9].Heap - checkpoints[1].Heap) / (double)checkpoints[1].Heap;
        // Throughput over windows of three tenths (one tenth is a few seconds: a vacuum or a noisy
        // neighbour on a shared machine moves it by 15 %): the beginning after the warm-up tenth, and the end.
        double Window(int first, int last) => (jobs / 10.0) * (last - first + 1) / (checkpoints[last].Seconds - checkpoints[first - 1].Seconds);
        var drift = (Window(7, 9) - Window(1, 3)) / Window(1, 3);
        return new LoadResult("soak", jobs, workers, clock.Elapsed.TotalSeconds, null, null, verified)
        {
            Extra =
            {
                ["memory_growth"] = Math.Round(memoryGrowth, 4), ["throughput_drift"] = Math.Round(drift, 4),
                ["working_set_mb_warm"] = Math.Round(checkpoints[1].Heap / 1048576.0, 1), ["working_set_mb_end"] = Math.Round(checkpoints[9].Heap / 1048576.0, 1),
                ["tenths_jobs_per_s"] = string.Join("/", Enumerable.Range(0, 10).Select(i => Math.Round(Rate(i)).ToString(System.Globalization.CultureInfo.InvariantCulture))),
            },
        };
    });

    /// <summary>
    /// The floor: a minimal hand-written SKIP LOCKED loop on a 4-column table, no library code.
    /// Fetch-and-delete (the design notes' "fetch + complete" loop): one transaction per batch that
    /// locks the jobs with SELECT ... FOR UPDATE SKIP LOCKED, would run them, and deletes them.
    /// One-shot: a single DELETE ... RETURNING per batch, which drops the jobs before running them
    /// (at most once; a crash loses the batch), reported for reference.
    /// </summary>
    /// <summary>
    /// The minimal lease-based loop, the floor a queue with leases is measured against: each worker
    /// commits a claim of up to <paramref name="batch"/> rows (marking them claimed, as a lease does),
    /// then deletes them in a second transaction. Prepared statements on one connection per worker, a
    /// minimal table with one partial index, the same connection settings as the library's.
    /// </summary>
    private Task<LoadResult> RawClaimAsync(string scenario, int batch) => WithSchemaAsync(scenario, async (dataSource, schema) =>
    {
        await CreateMinimalTableAsync(dataSource, schema, jobs);
        var seen = new ConcurrentDictionary<long, byte>();
        var duplicates = 0;
        var claimSql = $"""
            UPDATE "{schema}".raw_jobs SET claimed = true
            WHERE id = ANY (ARRAY(SELECT id FROM "{schema}".raw_jobs WHERE queue = 'default' AND NOT claimed AND run_at <= now() ORDER BY run_at, id LIMIT {batch} FOR UPDATE SKIP LOCKED))
            RETURNING id
            """;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            await using var connection = await dataSource.OpenConnectionAsync();
            await using var claim = new NpgsqlCommand(claimSql, connection);
            await using var delete = new NpgsqlCommand($"DELETE FROM \"{schema}\".raw_jobs WHERE id = ANY ($1)", connection);
            delete.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [] });
            await claim.PrepareAsync();
            await delete.PrepareAsync();
            var ids = new List<long>(batch);
            while (true)
            {
                ids.Clear();
                await using (var reader = await claim.ExecuteReaderAsync()) // committed on its own: the lease
                    while (await reader.ReadAsync()) ids.Add(reader.GetInt64(0));
                if (ids.Count == 0) return;
                foreach (var id in ids)
                    if (!seen.TryAdd(id, 0)) Interlocked.Increment(ref duplicates);
                ((NpgsqlParameter<long[]>)delete.Parameters[0]).TypedValue = ids.ToArray();
                await delete.ExecuteNonQueryAsync(); // the completion, in a transaction of its own
            }
        })));
        clock.Stop();
        var verified = duplicates == 0 && seen.Count == jobs && await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".raw_jobs") == 0;
        return new LoadResult(scenario, jobs, workers, clock.Elapsed.TotalSeconds, null, null, verified);
    });

    /// <summary>The minimal lease-based table (the claim floor's, and the enqueue floors' target), with <paramref name="rows"/> due rows.</summary>
    private static async Task CreateMinimalTableAsync(NpgsqlDataSource dataSource, string schema, int rows)
    {
        await using var create = dataSource.CreateCommand($"""
            CREATE SCHEMA "{schema}";
            CREATE TABLE "{schema}".raw_jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, queue text NOT NULL DEFAULT 'default', payload jsonb,
                                              run_at timestamptz NOT NULL DEFAULT now(), claimed boolean NOT NULL DEFAULT false);
            CREATE INDEX ON "{schema}".raw_jobs (queue, run_at, id) WHERE NOT claimed;
            INSERT INTO "{schema}".raw_jobs (payload) SELECT NULL FROM generate_series(1, {rows});
            ANALYZE "{schema}".raw_jobs;
            """);
        await create.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// The single-enqueue floor: <c>workers</c> clients, one connection each, a prepared single-row
    /// INSERT of a due job into the minimal table, committed on its own; what <c>enqueue-single</c> is measured against.
    /// </summary>
    private Task<LoadResult> RawInsertSingleAsync() => WithSchemaAsync("raw-insert-single", async (dataSource, schema) =>
    {
        await CreateMinimalTableAsync(dataSource, schema, 0);
        var latencies = new ConcurrentBag<double>();
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            await using var connection = await dataSource.OpenConnectionAsync();
            await using var insert = new NpgsqlCommand($"INSERT INTO \"{schema}\".raw_jobs (queue, payload) VALUES ($1, $2)", connection);
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "default" });
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Jsonb, Value = DBNull.Value });
            await insert.PrepareAsync();
            while (Interlocked.Increment(ref next) < jobs)
            {
                var start = Stopwatch.GetTimestamp();
                await insert.ExecuteNonQueryAsync();
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        })));
        clock.Stop();
        var all = latencies.ToList();
        var verified = await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".raw_jobs WHERE NOT claimed") == jobs;
        return new LoadResult("raw-insert-single", jobs, workers, clock.Elapsed.TotalSeconds, LoadResult.Percentile(all, 0.5), LoadResult.Percentile(all, 0.99), verified);
    });

    /// <summary>
    /// The bulk-enqueue floor: the same rows written by binary COPY into the minimal table, in
    /// batches of 5,000 as <c>enqueue-bulk</c> enqueues them, one client.
    /// </summary>
    private Task<LoadResult> RawCopyBulkAsync() => WithSchemaAsync("raw-copy-bulk", async (dataSource, schema) =>
    {
        await CreateMinimalTableAsync(dataSource, schema, 0);
        const int batch = 5000;
        var latencies = new List<double>();
        await using var connection = await dataSource.OpenConnectionAsync();
        var clock = Stopwatch.StartNew();
        for (var done = 0; done < jobs; done += batch)
        {
            var start = Stopwatch.GetTimestamp();
            await using (var import = await connection.BeginBinaryImportAsync($"COPY \"{schema}\".raw_jobs (queue, payload, run_at) FROM STDIN (FORMAT BINARY)"))
            {
                var now = DateTime.UtcNow;
                for (var i = 0; i < Math.Min(batch, jobs - done); i++)
                {
                    await import.StartRowAsync();
                    await import.WriteAsync("default", NpgsqlTypes.NpgsqlDbType.Text);
                    await import.WriteNullAsync();
                    await import.WriteAsync(now, NpgsqlTypes.NpgsqlDbType.TimestampTz);
                }

                await import.CompleteAsync();
            }

            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        clock.Stop();
        var verified = await CountAsync(dataSource, $"SELECT count(DISTINCT id) FROM \"{schema}\".raw_jobs WHERE NOT claimed") == jobs;
        return new LoadResult("raw-copy-bulk", jobs, 1, clock.Elapsed.TotalSeconds, LoadResult.Percentile(latencies, 0.5), LoadResult.Percentile(latencies, 0.99), verified)
            { Extra = { ["batch"] = batch } };
    });

    private Task<LoadResult> RawAsync(string scenario, int batch, bool oneShot) => WithSchemaAsync(scenario, async (dataSource, schema) =>
    {
        await using (var create = dataSource.CreateCommand($"""
            CREATE SCHEMA "{schema}";
            CREATE TABLE "{schema}".raw_jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, queue text NOT NULL DEFAULT 'default', payload jsonb, run_at timestamptz NOT NULL DEFAULT now());
            CREATE INDEX ON "{schema}".raw_jobs (queue, run_at, id);
            INSERT INTO "{schema}".raw_jobs (payload) SELECT NULL FROM generate_series(1, {jobs});
            ANALYZE "{schema}".raw_jobs;
            """))
            await create.ExecuteNonQueryAsync();
        var seen = new ConcurrentDictionary<long, byte>();
        var duplicates = 0;
        var pick = $"""SELECT id FROM "{schema}".raw_jobs WHERE queue = 'default' AND run_at <= now() ORDER BY run_at, id LIMIT {batch} FOR UPDATE SKIP LOCKED""";
        var oneShotSql = $"""DELETE FROM "{schema}".raw_jobs WHERE id IN ({pick}) RETURNING id""";
        var deleteSql = $"""DELETE FROM "{schema}".raw_jobs WHERE id = ANY ($1)""";
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            await using var connection = await dataSource.OpenConnectionAsync();
            await using var fetch = new NpgsqlCommand(oneShot ? oneShotSql : pick, connection);
            await using var delete = new NpgsqlCommand(deleteSql, connection);
            delete.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [] });
            await fetch.PrepareAsync();
            await delete.PrepareAsync();
            var ids = new List<long>(batch);
            while (true)
            {
                ids.Clear();
                await using var transaction = oneShot ? null : await connection.BeginTransactionAsync();
                fetch.Transaction = transaction;
                await using (var reader = await fetch.ExecuteReaderAsync())
                {
                    while (await reader.ReadAsync()) ids.Add(reader.GetInt64(0));
                }

                foreach (var id in ids)
                {
                    if (!seen.TryAdd(id, 0)) Interlocked.Increment(ref duplicates);
                }

                if (transaction is not null)
                {
                    if (ids.Count > 0)
                    {
                        delete.Transaction = transaction;
                        ((NpgsqlParameter<long[]>)delete.Parameters[0]).TypedValue = ids.ToArray();
                        await delete.ExecuteNonQueryAsync();
                    }

                    await transaction.CommitAsync();
                }

                if (ids.Count == 0) return;
            }
        })));
        clock.Stop();
        var verified = duplicates == 0 && seen.Count == jobs && await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".raw_jobs") == 0;
        return new LoadResult(scenario, jobs, workers, clock.Elapsed.TotalSeconds, null, null, verified);
    });

    /// <summary>
    /// The drain without the worker host: --workers tasks each acquire 100 jobs and acknowledge them
    /// in one call, straight through <see cref="IJobQueue"/>. Separates the storage's cost from the host's.
    /// </summary>
    private Task<LoadResult> QueueLoopAsync() => WithSchemaAsync("queue-loop", async (dataSource, schema) =>
    {
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
        await queue.MigrateAsync();
        for (var done = 0; done < jobs; done += 10_000)
            await queue.EnqueueManyAsync(Enumerable.Range(0, Math.Min(10_000, jobs - done)).Select(_ => new JobRequest(NoOp)).ToArray());
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
        {
            while (true)
            {
                var taken = await queue.AcquireAsync(new AcquireRequest("default", $"loop{w}", 100, TimeSpan.FromMinutes(5)));
                if (taken.Count == 0) return;
                await queue.AcknowledgeAsync(taken.Select(j => JobAck.Success(j.Lease)).ToArray());
            }
        })));
        clock.Stop();
        var verified = await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE state = 'succeeded' AND attempt = 1") == jobs;
        return new LoadResult("queue-loop", jobs, workers, clock.Elapsed.TotalSeconds, null, null, verified);
    });

    /// <summary>Listens to the library's activities and metrics, to compare the drain with telemetry on.</summary>
    private sealed class TelemetrySink : IDisposable
    {
        private readonly ActivityListener _activities = new()
        {
            ShouldListenTo = s => s.Name == "Scheduling",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };

        private readonly System.Diagnostics.Metrics.MeterListener _metrics = new();

        public TelemetrySink()
        {
            ActivitySource.AddActivityListener(_activities);
            _metrics.InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == "Scheduling") l.EnableMeasurementEvents(instrument); };
            _metrics.SetMeasurementEventCallback<long>((_, _, _, _) => { });
            _metrics.SetMeasurementEventCallback<double>((_, _, _, _) => { });
            _metrics.Start();
        }

        public void Dispose()
        {
            _activities.Dispose();
            _metrics.Dispose();
        }
    }
}
