using System.Collections.Concurrent;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Scheduling.Postgres.Tests.Properties;

/// <summary>
/// Capacity-aware claims under concurrent hosts: several hosts of random capacities run random
/// scripts (claim with what their held jobs leave free, finish some, crash and give everything
/// back) against one PostgreSQL queue of jobs of random sizes, interleaved however the server
/// schedules them. At every instant each host's held allocations fit its capacity and no host holds
/// a job that could never fit it; then, draining, every job that fits some host is run, and only
/// jobs that fit none are left. Leases are long, so none expires: nothing depends on timing.
/// </summary>
public sealed class CapacityClaimsUnderConcurrentHosts(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);

    private sealed record Host(ResourceCapacity Capacity, Step[] Script);

    private abstract record Step;

    private sealed record Claim(int Max) : Step;

    private sealed record Finish(int Count) : Step;

    private sealed record Crash : Step;

    private sealed record Case(Host[] Hosts, (int MemoryMb, int Gpus)[] Jobs);

    [Fact]
    public void No_host_ever_holds_more_than_its_capacity_and_every_job_that_fits_a_host_runs()
    {
        var capacity =
            from memory in Gen.Elements(1_024, 2_048, 4_096, 8_192)
            from gpus in Gen.Elements<int?>(null, 0, 1, 2)
            select new ResourceCapacity { MemoryMb = memory, Gpus = gpus };
        var step = Gen.Frequency(
            (5, Gen.Choose(1, 6).Select(n => (Step)new Claim(n))),
            (4, Gen.Choose(1, 3).Select(n => (Step)new Finish(n))),
            (1, Gen.Constant((Step)new Crash())));
        var host = from c in capacity from script in Gen.ListOf(step, 10) select new Host(c, script.ToArray());
        var job = from memory in Gen.Choose(1, 90).Select(n => n * 100) from gpus in Gen.Elements(0, 0, 0, 1, 2) select (memory, gpus);
        var cases =
            from hostCount in Gen.Choose(2, 4)
            from hosts in Gen.ListOf(host, hostCount)
            from jobs in Gen.ListOf(job).Where(j => j.Count is >= 5 and <= 40)
            select new Case(hosts.ToArray(), jobs.ToArray());
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(20), Prop.ForAll(Arb.From(cases), c => Task.Run(() => RunAsync(c)).GetAwaiter().GetResult()));
    }

    private async Task<bool> RunAsync(Case c)
    {
        var queue = await database.NewQueueAsync();
        var requests = c.Jobs.Select((j, i) => new JobRequest("k") { Command = $"job {i}", Definition = new JobDefinition($"d{i}", j.MemoryMb, 100, j.Gpus) }).ToArray();
        var ids = (await queue.EnqueueManyAsync(requests)).Select(r => r.JobId).ToArray();
        var size = ids.Select((id, i) => (id, c.Jobs[i])).ToDictionary(p => p.id, p => p.Item2);
        var violations = new ConcurrentQueue<string>();
        var finished = new ConcurrentDictionary<long, int>();

        var hosts = c.Hosts.Select((h, i) => new Claimer($"h{i}", h.Capacity, queue, violations, finished)).ToArray();
        await Task.WhenAll(hosts.Select((h, i) => Task.Run(() => h.RunAsync(c.Hosts[i].Script))));

        // Drain: every host gives back what it holds, then claims with all it has and finishes it, round after round.
        foreach (var h in hosts) await h.RunAsync([new Crash()]);
        for (var round = 0; round < 200; round++)
        {
            var progress = false;
            foreach (var h in hosts) progress |= await h.ClaimAndFinishAllAsync();
            if (!progress) break;
        }

        Assert.True(violations.IsEmpty, string.Join(Environment.NewLine, violations));
        foreach (var id in ids)
        {
            var (memory, gpus) = size[id];
            var fitsSomeHost = c.Hosts.Any(h => h.Capacity.Fits(new ResourceAllocation
            {
                DefinitionId = "d", MemoryMb = memory, CpuMillicores = 100, Gpus = gpus, BaselineMemoryMb = memory, Source = AllocationSource.Baseline, SkipReason = AraSkipReason.None,
            }));
            var state = (await queue.GetJobAsync(id))!.State;
            Assert.Equal(fitsSomeHost ? JobState.Succeeded : JobState.Available, state);
            if (fitsSomeHost) Assert.Equal(1, finished[id]);
        }

        return true;
    }

    /// <summary>One host: what it holds, claimed against its capacity the way the worker host does.</summary>
    private sealed class Claimer(string name, ResourceCapacity capacity, PostgresJobQueue queue, ConcurrentQueue<string> violations, ConcurrentDictionary<long, int> finished)
    {
        private readonly List<AcquiredJob> _held = [];

        public async Task RunAsync(Step[] script)
        {
            foreach (var step in script)
            {
                switch (step)
                {
                    case Claim claim:
                        await ClaimAsync(claim.Max);
                        break;
                    case Finish finish:
                        foreach (var job in _held.Take(finish.Count).ToArray())
                        {
                            if ((await queue.CompleteAsync(job.Lease)).Applied) finished.AddOrUpdate(job.Id, 1, (_, n) => n + 1);
                            else violations.Enqueue($"{name}: the completion of job {job.Id} did not apply");
                            _held.Remove(job);
                        }

                        break;
                    case Crash:
                        // A killed host's leases come back (by rescue, after they expire; here at once).
                        foreach (var job in _held) await queue.AcknowledgeAsync([new JobAck(job.Lease, JobAckKind.Released)]);
                        _held.Clear();
                        break;
                }
            }
        }

        public async Task<bool> ClaimAndFinishAllAsync()
        {
            var claimed = await ClaimAsync(100);
            await RunAsync([new Finish(_held.Count)]);
            return claimed > 0;
        }

        private async Task<int> ClaimAsync(int max)
        {
            var free = ResourceCapacity.Remaining(capacity, _held.Select(j => j.Allocation));
            var jobs = await queue.AcquireAsync(new AcquireRequest("default", name, max, Lease) { Capacity = capacity, Available = free });
            foreach (var job in jobs)
            {
                if (!capacity.Fits(job.Allocation)) violations.Enqueue($"{name} ({capacity}) took job {job.Id} needing {job.Allocation?.MemoryMb} MB, {job.Allocation?.Gpus} GPUs");
                _held.Add(job);
            }

            var memory = _held.Sum(j => (long)(j.Allocation?.MemoryMb ?? 0));
            var gpus = _held.Sum(j => (long)(j.Allocation?.Gpus ?? 0));
            if (memory > capacity.MemoryMb || gpus > capacity.Gpus) // an unlimited amount (null) is never exceeded
                violations.Enqueue($"{name} ({capacity}) holds {memory} MB and {gpus} GPUs after a claim");
            return jobs.Count;
        }
    }
}
