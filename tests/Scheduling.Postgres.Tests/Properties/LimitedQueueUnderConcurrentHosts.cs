using System.Collections.Concurrent;
using FsCheck;
using FsCheck.Fluent;
using Npgsql;
using Xunit;

namespace Scheduling.Postgres.Tests.Properties;

/// <summary>
/// A limited queue under several hosts claiming at once (each its own queue object and connection
/// pool), with random keys, caps, rates and deadlines, and hosts killed mid-batch (their leases
/// expired and rescued). The invariants do not depend on timing: no snapshot of the table ever shows
/// more running jobs of a key than the cap, nor does the hosts' own (conservative) count of what they
/// hold; the starts of each key, dated by their leases, never exceed the bucket's bound
/// C × (1 + w / P) over any window w; no job is leased after its latest start; and every job ends
/// succeeded exactly once, or expired unstarted.
/// </summary>
public sealed class LimitedQueueUnderConcurrentHosts(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);

    private sealed record Case(int Hosts, int Keys, int? Cap, RateLimit? KeyRate, bool Fair, int Jobs, int Batch, int Kills, int WithDeadline);

    [Fact]
    public void Caps_buckets_and_deadlines_hold_across_hosts_with_kills()
    {
        var rates = Gen.OneOf(Gen.Constant<RateLimit?>(null), from c in Gen.Choose(2, 6) from ms in Gen.Choose(100, 300) select (RateLimit?)new RateLimit(c, TimeSpan.FromMilliseconds(ms)));
        var cases =
            from hosts in Gen.Choose(2, 4)
            from keys in Gen.Choose(1, 5)
            from cap in Gen.OneOf(Gen.Constant<int?>(null), Gen.Choose(1, 3).Select(n => (int?)n))
            from rate in rates
            from fair in Gen.Elements(true, false)
            from jobs in Gen.Choose(20, 60)
            from batch in Gen.Choose(1, 8)
            from kills in Gen.Choose(0, 2)
            from withDeadline in Gen.Choose(0, 6)
            where cap is not null || rate is not null || fair
            select new Case(hosts, keys, cap, rate, fair, jobs, batch, kills, withDeadline);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(10), Prop.ForAll(Arb.From(cases), c => Task.Run(() => RunAsync(c)).GetAwaiter().GetResult()));
    }

    private async Task<bool> RunAsync(Case c)
    {
        var admin = await database.NewQueueAsync();
        await admin.SetQueueLimitsAsync("default", new QueueLimits { ConcurrencyPerKey = c.Cap, RatePerKey = c.KeyRate, FairKeys = c.Fair });
        var random = new Random(c.GetHashCode());
        var requests = Enumerable.Range(0, c.Jobs).Select(i => new JobRequest("k", i)
        {
            // A few unkeyed jobs ride along; some jobs must start soon or never.
            PartitionKey = i % 10 == 9 ? null : $"tenant-{random.Next(c.Keys)}",
            LatestStartAt = i < c.WithDeadline ? DateTimeOffset.UtcNow.AddMilliseconds(random.Next(-500, 300)) : null,
        }).ToArray();
        var ids = await admin.EnqueueManyAsync(requests);
        var keyOf = ids.Select((r, i) => (r.JobId, requests[i].PartitionKey)).ToDictionary(p => p.JobId, p => p.PartitionKey);
        var latestOf = ids.Select((r, i) => (r.JobId, requests[i].LatestStartAt)).Where(p => p.LatestStartAt is not null).ToDictionary(p => p.JobId, p => p.LatestStartAt!.Value);

        var violations = new ConcurrentBag<string>();
        var starts = new ConcurrentBag<(string Key, DateTimeOffset At)>();
        var succeeded = new ConcurrentDictionary<long, int>();
        var held = new ConcurrentDictionary<string, int>();
        var abandoned = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();

        async Task HostAsync(int index, bool dies)
        {
            await using var dataSource = NpgsqlDataSource.Create(database.ConnectionString);
            var host = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = admin.Schema });
            var worker = $"host-{index}";
            var claims = 0;
            while (!stop.IsCancellationRequested)
            {
                var jobs = await host.AcquireAsync(new AcquireRequest("default", worker, c.Batch, Lease));
                foreach (var job in jobs)
                {
                    var at = job.LeaseExpiresAt - Lease; // the claim's clock
                    if (keyOf[job.Id] is { } key)
                    {
                        starts.Add((key, at));
                        if (c.Cap is { } cap && held.AddOrUpdate(key, 1, (_, n) => n + 1) > cap)
                            violations.Add($"{worker} holds more than {cap} jobs of {key}");
                    }

                    if (latestOf.TryGetValue(job.Id, out var latest) && at > latest) violations.Add($"job {job.Id} leased at {at:O}, after its latest start {latest:O}");
                }

                if (dies && jobs.Count > 0 && ++claims == 2)
                {
                    abandoned.Enqueue(worker); // killed mid-batch: its leases are never acknowledged
                    return;
                }

                foreach (var job in jobs)
                    if (keyOf[job.Id] is { } key && c.Cap is not null) held.AddOrUpdate(key, 0, (_, n) => n - 1); // before the acknowledgement: an undercount
                foreach (var result in await host.AcknowledgeAsync(jobs.Select(j => JobAck.Success(j.Lease)).ToArray()))
                    if (result.Applied) succeeded.AddOrUpdate(result.JobId, 1, (_, n) => n + 1);
                if (jobs.Count == 0) await Task.Delay(5); // rate-limited or drained: poll again
            }
        }

        var hosts = Enumerable.Range(0, c.Hosts).Select(i => Task.Run(() => HostAsync(i, i < c.Kills && i < c.Hosts - 1))).ToArray();
        var overCap = c.Cap is null ? null : database.DataSource.CreateCommand($"""
            SELECT count(*) FROM (SELECT 1 FROM "{admin.Schema}".jobs WHERE state = 'running' AND partition_key IS NOT NULL
                                  GROUP BY partition_key HAVING count(*) > {c.Cap}) AS o
            """);
        while (await database.CountJobsAsync(admin.Schema, "state IN ('waiting', 'available', 'running')") > 0)
        {
            if (overCap is not null && (long)(await overCap.ExecuteScalarAsync())! > 0) violations.Add("a snapshot shows a key over its cap");
            while (abandoned.TryDequeue(out var dead))
            {
                await using var held2 = database.DataSource.CreateCommand($"""SELECT partition_key FROM "{admin.Schema}".jobs WHERE state = 'running' AND locked_by = '{dead}' AND partition_key IS NOT NULL""");
                await using (var reader = await held2.ExecuteReaderAsync())
                    while (await reader.ReadAsync()) held.AddOrUpdate(reader.GetString(0), 0, (_, n) => n - 1);
                await using var expire = database.DataSource.CreateCommand($"""UPDATE "{admin.Schema}".jobs SET lease_expires_at = now() - interval '1 second' WHERE state = 'running' AND locked_by = '{dead}'""");
                await expire.ExecuteNonQueryAsync();
                await admin.RescueExpiredLeasesAsync();
            }

            await admin.ExpireOverdueAsync();
            await Task.Delay(10);
        }

        await stop.CancelAsync();
        await Task.WhenAll(hosts);
        if (overCap is not null) await overCap.DisposeAsync();

        Assert.Empty(violations);
        var expired = await database.CountJobsAsync(admin.Schema, "state = 'expired'");
        Assert.Equal(c.Jobs, succeeded.Count + expired);
        Assert.All(succeeded.Values, n => Assert.Equal(1, n));
        Assert.True(await database.CountJobsAsync(admin.Schema, "state = 'expired' AND latest_start_at IS NULL") == 0);
        if (c.KeyRate is { } rate) AssertWithinBucket(starts, rate);
        return true;
    }

    /// <summary>For every key and every window [t_i, t_j] between two of its starts: j − i + 1 ≤ C × (1 + (t_j − t_i + 1 µs) / P).</summary>
    private static void AssertWithinBucket(IEnumerable<(string Key, DateTimeOffset At)> starts, RateLimit rate)
    {
        foreach (var group in starts.GroupBy(s => s.Key))
        {
            var times = group.Select(s => s.At).Order().ToArray();
            for (var i = 0; i < times.Length; i++)
                for (var j = i; j < times.Length; j++)
                {
                    var bound = rate.Count * (1 + ((times[j] - times[i]).Ticks + 10) / (double)rate.Period.Ticks);
                    Assert.True(j - i + 1 <= bound, $"{group.Key}: {j - i + 1} starts within {(times[j] - times[i]).TotalMilliseconds} ms; the bucket allows {bound:0.##}");
                }
        }
    }
}
