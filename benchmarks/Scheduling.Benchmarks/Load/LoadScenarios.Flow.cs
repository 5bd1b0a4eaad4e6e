using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Scheduling.Postgres;

namespace Scheduling.Benchmarks.Load;

/// <summary>
/// Flow control under load (<c>load --scenario flow</c>): the claim's cost over 10,000 keys with a
/// per-key cap and with fair keys next to the plain drain, rate-limit accuracy, and a small tenant's
/// wait behind a big one, fair and plain. Each verifies its jobs like the others.
/// </summary>
internal sealed partial class LoadScenarios
{
    public static readonly string[] Flow = ["drain", "keyed-drain", "fair-drain", "rate-accuracy", "tenant-wait", "tenant-wait-plain"];

    private const int Keys = 10_000;

    private async Task<PostgresJobQueue> MigratedAsync(NpgsqlDataSource dataSource, string schema)
    {
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
        await queue.MigrateAsync();
        return queue;
    }

    private static async Task EnqueueAsync(PostgresJobQueue queue, int count, Func<int, JobRequest> request)
    {
        for (var done = 0; done < count; done += 10_000)
            await queue.EnqueueManyAsync(Enumerable.Range(done, Math.Min(10_000, count - done)).Select(request).ToArray());
    }

    /// <summary>The drain scenario with the jobs spread over 10,000 partition keys and the queue limited.</summary>
    private Task<LoadResult> LimitedDrainAsync(string scenario, QueueLimits limits) => WithSchemaAsync(scenario, async (dataSource, schema) =>
    {
        var queue = await MigratedAsync(dataSource, schema);
        await EnqueueAsync(queue, jobs, i => new JobRequest(NoOp, (long)i) { PartitionKey = $"tenant-{i % Keys}" });
        await queue.SetQueueLimitsAsync("default", limits);
        var result = await DrainWithHostAsync(scenario, dataSource, schema, o => o.PollInterval = TimeSpan.FromMilliseconds(50));
        result.Extra["keys"] = Keys;
        return result;
    });

    /// <summary>
    /// Requested against achieved starts per second: four keys at 50 per second each, then the whole
    /// queue at 200 per second, about six seconds each; achieved = the starts after the first burst
    /// over the time they took (the lease times the claim wrote), per key.
    /// </summary>
    private Task<LoadResult> RateAccuracyAsync() => WithSchemaAsync("rate-accuracy", async (dataSource, schema) =>
    {
        var queue = await MigratedAsync(dataSource, schema);
        const int perKey = 50, keys = 4, seconds = 6;
        var total = 0;
        var verified = true;
        var clock = Stopwatch.StartNew();
        var result = new LoadResult("rate-accuracy", 0, workers, 0, null, null, true);

        async Task<double[]> RunAsync(string queueName, QueueLimits limits, RateLimit rate, int count, Func<int, string?> keyOf)
        {
            await EnqueueAsync(queue, count, i => new JobRequest(NoOp, (long)i) { Queue = queueName, PartitionKey = keyOf(i) });
            await queue.SetQueueLimitsAsync(queueName, limits);
            var handled = 0;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var builder = Host.CreateApplicationBuilder();
            builder.Services.AddScheduling(s => s
                .UsePostgres(connectionString, o => o.Schema = schema)
                .Configure(o => { o.AddQueue(queueName, workers); o.PollInterval = TimeSpan.FromMilliseconds(20); })
                .AddHandler<long>(NoOp, (_, _) =>
                {
                    if (Interlocked.Increment(ref handled) == count) done.TrySetResult();
                    return Task.CompletedTask;
                }));
            using var host = builder.Build();
            await host.StartAsync();
            await done.Task.WaitAsync(TimeSpan.FromMinutes(5));
            await host.StopAsync();
            await using var read = dataSource.CreateCommand($"""
                SELECT coalesce(partition_key, ''), count(*), extract(epoch FROM max(attempted_at) - min(attempted_at))::float8
                FROM "{schema}".jobs WHERE queue = $1 AND state = 'succeeded' AND attempt = 1 GROUP BY 1 ORDER BY 1
                """);
            read.Parameters.AddWithValue(queueName);
            var achieved = new List<double>();
            await using (var reader = await read.ExecuteReaderAsync())
                while (await reader.ReadAsync()) achieved.Add((reader.GetInt64(1) - rate.Count) / reader.GetDouble(2)); // after the first burst
            total += count;
            verified &= handled == count && achieved.Count > 0;
            return achieved.ToArray();
        }

        var keyRate = new RateLimit(perKey, TimeSpan.FromSeconds(1));
        var perKeyAchieved = await RunAsync("keyed", new QueueLimits { RatePerKey = keyRate }, keyRate, keys * perKey * seconds, i => $"tenant-{i % keys}");
        var queueRate = new RateLimit(keys * perKey, TimeSpan.FromSeconds(1));
        var queueAchieved = await RunAsync("whole", new QueueLimits { Rate = queueRate }, queueRate, keys * perKey * seconds, _ => null);
        clock.Stop();
        var summary = result with { Jobs = total, Seconds = clock.Elapsed.TotalSeconds, Verified = verified && perKeyAchieved.Length == keys };
        summary.Extra["per_key_requested"] = perKey;
        summary.Extra["per_key_achieved_min"] = Math.Round(perKeyAchieved.Min(), 2);
        summary.Extra["per_key_achieved_max"] = Math.Round(perKeyAchieved.Max(), 2);
        summary.Extra["queue_requested"] = queueRate.Count;
        summary.Extra["queue_achieved"] = Math.Round(queueAchieved.Single(), 2);
        return summary;
    });

    /// <summary>
    /// A small tenant's wait behind a big one in one queue: <c>--jobs</c> jobs of one key (1,000,000
    /// for the real figure) are draining when ten jobs of another key are enqueued; the wait is from
    /// that enqueue to the tenth small job handled, and "ahead" how many big jobs were handled meanwhile.
    /// With fair keys the small tenant waits about a batch; without, behind the whole backlog.
    /// </summary>
    private Task<LoadResult> TenantWaitAsync(bool fair) => WithSchemaAsync(fair ? "tenant-wait" : "tenant-wait-plain", async (dataSource, schema) =>
    {
        var queue = await MigratedAsync(dataSource, schema);
        const int small = 10;
        await EnqueueAsync(queue, jobs, _ => new JobRequest(NoOp, "big") { PartitionKey = "big" });
        if (fair) await queue.SetQueueLimitsAsync("default", new QueueLimits { FairKeys = true });
        var bigHandled = 0;
        var smallHandled = 0;
        var bigWhenSmallEnqueued = -1;
        var smallDone = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost<string>(schema, _ => { }, ctx =>
        {
            if (ctx.Payload == "big")
            {
                if (Interlocked.Increment(ref bigHandled) == 2000) started.TrySetResult();
            }
            else if (Interlocked.Increment(ref smallHandled) == small) smallDone.TrySetResult(Volatile.Read(ref bigHandled));
            return Task.CompletedTask;
        });
        await host.StartAsync();
        await started.Task.WaitAsync(TimeSpan.FromMinutes(5)); // draining at full speed
        bigWhenSmallEnqueued = Volatile.Read(ref bigHandled);
        var clock = Stopwatch.StartNew();
        await queue.EnqueueManyAsync(Enumerable.Range(0, small).Select(_ => new JobRequest(NoOp, "small") { PartitionKey = "small" }).ToArray());
        var bigWhenSmallDone = await smallDone.Task.WaitAsync(TimeSpan.FromMinutes(30));
        clock.Stop();
        await host.StopAsync();
        var verified = await CountAsync(dataSource, $"SELECT count(*) FROM \"{schema}\".jobs WHERE partition_key = 'small' AND state = 'succeeded'") == small;
        return new LoadResult(fair ? "tenant-wait" : "tenant-wait-plain", jobs + small, workers, clock.Elapsed.TotalSeconds, null, null, verified)
        {
            Extra = { ["small_wait_ms"] = Math.Round(clock.Elapsed.TotalMilliseconds, 1), ["big_handled_meanwhile"] = bigWhenSmallDone - bigWhenSmallEnqueued, ["big_backlog"] = jobs },
        };
    });
}
