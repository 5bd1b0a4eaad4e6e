using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests.Hosting;

/// <summary>A worker process killed with SIGKILL mid-job: its leases expire, its jobs are rescued and finished once elsewhere.</summary>
public sealed class CrashedWorkerTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task Jobs_of_a_killed_worker_are_rescued_retried_once_each_and_its_late_completions_are_rejected()
    {
        const int jobs = 6;
        var schema = database.NewSchema();
        var queue = await database.NewQueueAsync(configure: o => o.Schema = schema);
        var ids = (await queue.EnqueueManyAsync(Enumerable.Range(0, jobs).Select(i => new JobRequest("slow", i) { Queue = "crash", MaxAttempts = 3 }).ToArray())).Select(r => r.JobId).ToHashSet();

        // A real worker process takes every job and hangs in them.
        using var child = ToolProcess.Start("Scheduling.TestEnqueuer.dll", ["work", database.ConnectionString, schema, "crash", "slow", jobs.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        var started = new HashSet<long>();
        while (started.Count < jobs)
        {
            var line = await child.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.NotNull(line);
            if (line.StartsWith("started ", StringComparison.Ordinal)) started.Add(long.Parse(line[8..], System.Globalization.CultureInfo.InvariantCulture));
        }

        Assert.Equal(ids, started);
        // Its heartbeat has reported them running: from then on a rescue charges the attempt.
        await Eventually.HoldsAsync(async () => await database.CountJobsAsync(schema, "state = 'running' AND started") == jobs, "the worker's heartbeat reports every job started");
        var deadLeases = new List<JobLease>();
        await using (var read = database.DataSource.CreateCommand($"SELECT id, lease_token, attempt, max_attempts FROM \"{schema}\".jobs WHERE state = 'running'"))
        await using (var reader = await read.ExecuteReaderAsync())
            while (await reader.ReadAsync()) deadLeases.Add(new JobLease(reader.GetInt64(0), reader.GetGuid(1), reader.GetInt32(2), reader.GetInt32(3)));
        Assert.Equal(jobs, deadLeases.Count);

        child.Kill(entireProcessTree: true); // SIGKILL: no shutdown, no release
        await child.WaitForExitAsync();

        // Another worker rescues and finishes them.
        var runs = new ConcurrentDictionary<long, int>();
        var services = new ServiceCollection().AddLogging();
        services.AddScheduling(s => s
            .UsePostgres(database.ConnectionString, o => o.Schema = schema)
            .Configure(o => { o.AddQueue("crash", 4); o.LeaseDuration = TimeSpan.FromSeconds(3); o.HeartbeatInterval = TimeSpan.FromSeconds(1); o.RescueInterval = TimeSpan.FromMilliseconds(500); })
            .AddHandler<int>("slow", (ctx, _) => { runs.AddOrUpdate(ctx.Job.Id, 1, (_, n) => n + 1); return Task.CompletedTask; }));
        await using var provider = services.BuildServiceProvider();
        var hosts = provider.GetServices<IHostedService>().ToArray();
        var clock = Stopwatch.StartNew();
        foreach (var host in hosts) await host.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(async () => (await Task.WhenAll(ids.Select(async id => (await queue.GetJobAsync(id))!.State))).All(s => s == JobState.Succeeded),
            "every job succeeds on the second worker", TimeSpan.FromSeconds(60));
        var rescuedWithin = clock.Elapsed;
        foreach (var host in hosts.Reverse()) await host.StopAsync(CancellationToken.None);

        Assert.Equal(ids, runs.Keys.ToHashSet());
        Assert.All(runs.Values, n => Assert.Equal(1, n)); // none completed twice
        foreach (var id in ids) Assert.Equal(2, (await queue.GetJobAsync(id))!.Attempt); // the crashed attempt counted
        var late = await queue.AcknowledgeAsync(deadLeases.Select(JobAck.Success).ToArray());
        Assert.All(late, r => Assert.False(r.Applied)); // the dead worker's leases finish nothing
        Assert.True(rescuedWithin < TimeSpan.FromSeconds(30), $"rescue took {rescuedWithin}");
    }

    [Fact]
    public async Task A_killed_worker_with_a_deep_buffer_charges_no_attempt_to_the_jobs_it_never_started()
    {
        const int jobs = 40;
        var schema = database.NewSchema();
        var queue = await database.NewQueueAsync(configure: o => o.Schema = schema);
        var ids = (await queue.EnqueueManyAsync(Enumerable.Range(0, jobs).Select(i => new JobRequest("slow", i) { Queue = "deep", MaxAttempts = 1 }).ToArray())).Select(r => r.JobId).ToArray();

        // One slot, hung in its first job, and every other job fetched ahead into its buffer.
        using var child = ToolProcess.Start("Scheduling.TestEnqueuer.dll", ["work", database.ConnectionString, schema, "deep", "slow", "1", jobs.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        var line = await child.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.StartsWith("started ", line, StringComparison.Ordinal);
        var startedId = long.Parse(line![8..], System.Globalization.CultureInfo.InvariantCulture);
        // Checked at once: the buffer was leased by the claim before the first start, and is given back
        // before its 3 s leases run out; on a busy machine the heartbeat below can take that long.
        Assert.True(await database.CountJobsAsync(schema, "state = 'running' AND NOT started") > 0, "the worker holds jobs it has not started");
        await Eventually.HoldsAsync(async () => await database.CountJobsAsync(schema, "state = 'running' AND started") == 1, "the started job is reported by a heartbeat");

        child.Kill(entireProcessTree: true);
        await child.WaitForExitAsync();

        var services = new ServiceCollection().AddLogging();
        services.AddScheduling(s => s
            .UsePostgres(database.ConnectionString, o => o.Schema = schema)
            .Configure(o => { o.AddQueue("deep", 8); o.LeaseDuration = TimeSpan.FromSeconds(3); o.HeartbeatInterval = TimeSpan.FromSeconds(1); o.RescueInterval = TimeSpan.FromMilliseconds(500); })
            .AddHandler<int>("slow", (_, _) => Task.CompletedTask));
        await using var provider = services.BuildServiceProvider();
        var hosts = provider.GetServices<IHostedService>().ToArray();
        foreach (var host in hosts) await host.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(async () => await database.CountJobsAsync(schema, "state IN ('succeeded', 'dead')") == jobs, "every job is finished", TimeSpan.FromSeconds(60));
        foreach (var host in hosts.Reverse()) await host.StopAsync(CancellationToken.None);

        // Only the job that ran used its one attempt; every job that waited in the buffer ran once, uncharged.
        foreach (var id in ids)
        {
            var job = (await queue.GetJobAsync(id))!;
            if (id == startedId) Assert.Equal(JobState.Dead, job.State);
            else Assert.Equal((JobState.Succeeded, 1), (job.State, job.Attempt));
        }
    }
}
