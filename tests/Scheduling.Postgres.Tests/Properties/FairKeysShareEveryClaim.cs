using FsCheck;
using FsCheck.Fluent;
using Npgsql;
using Xunit;

namespace Scheduling.Postgres.Tests.Properties;

/// <summary>
/// Fairness between keys under a skewed backlog (one key with hundreds of jobs, the others with a
/// few, enqueued after it): every claim, by whichever host, is full while enough is due, and gives
/// each key with due jobs at least min(its due jobs, ⌊batch / keys with due jobs⌋). So a small key's
/// jobs all start within ⌈n / ⌊batch / keys⌋⌉ claims of being enqueued, whatever the big key holds.
/// </summary>
public sealed class FairKeysShareEveryClaim(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);

    private sealed record Case(int Big, int[] Small, int Batch);

    [Fact]
    public void Each_claim_gives_every_key_its_share()
    {
        var cases =
            from big in Gen.Choose(100, 400)
            from small in Gen.Choose(1, 10).ArrayOf().Where(a => a.Length is >= 1 and <= 6)
            from batch in Gen.Choose(2, 12)
            select new Case(big, small, batch);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(10), Prop.ForAll(Arb.From(cases), c => Task.Run(() => RunAsync(c)).GetAwaiter().GetResult()));
    }

    private async Task<bool> RunAsync(Case c)
    {
        var first = await database.NewQueueAsync();
        await using var otherSource = NpgsqlDataSource.Create(database.ConnectionString);
        var second = new PostgresJobQueue(otherSource, new PostgresQueueOptions { Schema = first.Schema });
        await first.SetQueueLimitsAsync("default", new QueueLimits { FairKeys = true });
        await first.EnqueueManyAsync(Enumerable.Range(0, c.Big).Select(_ => new JobRequest("k") { PartitionKey = "big" }).ToArray());
        var small = c.Small.SelectMany((n, k) => Enumerable.Repeat($"small-{k}", n)).Select(key => new JobRequest("k") { PartitionKey = key }).ToArray();
        var ids = await first.EnqueueManyAsync(small);
        var keyOf = ids.Select((r, i) => (r.JobId, small[i].PartitionKey!)).ToDictionary(p => p.JobId, p => p.Item2);

        var due = c.Small.Select((n, k) => ($"small-{k}", n)).Append(("big", c.Big)).ToDictionary(p => p.Item1, p => p.Item2);
        for (var claim = 0; due.Values.Any(n => n > 0); claim++)
        {
            var host = claim % 2 == 0 ? first : second;
            var jobs = await host.AcquireAsync(new AcquireRequest("default", $"host-{claim % 2}", c.Batch, Lease));
            var got = jobs.GroupBy(j => keyOf.GetValueOrDefault(j.Id, "big")).ToDictionary(g => g.Key, g => g.Count());
            var active = due.Count(p => p.Value > 0);
            Assert.Equal(Math.Min(c.Batch, due.Values.Sum()), jobs.Count);
            foreach (var (key, n) in due.Where(p => p.Value > 0))
                Assert.True(got.GetValueOrDefault(key) >= Math.Min(n, c.Batch / active), $"claim {claim}: {key} had {n} due of {active} keys and got {got.GetValueOrDefault(key)} of {c.Batch}");
            foreach (var (key, n) in got) due[key] -= n;
            await host.AcknowledgeAsync(jobs.Select(j => JobAck.Success(j.Lease)).ToArray());
        }

        return true;
    }
}
