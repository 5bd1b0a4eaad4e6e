using Xunit;

namespace Scheduling.QueueContract;

/// <summary>The live hosts a store knows, and the jobs no live host can hold (<see cref="QueueStats.Oversized"/>).</summary>
public abstract partial class JobQueueContractTests
{
    private static readonly TimeSpan HostTtl = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_reported_host_is_live_until_its_report_expires_or_it_is_removed()
    {
        var queue = await CreateQueueAsync();
        await queue.ReportHostAsync(new WorkerHostInfo("h-big", ["mail", "sms"], new ResourceCapacity(MemoryMb: 65_536, Gpus: 1)), HostTtl);
        await queue.ReportHostAsync(new WorkerHostInfo("h-any", ["mail"], null), HostTtl);
        var started = Time.GetUtcNow();

        var hosts = await queue.ListHostsAsync();
        Assert.Equal(["h-any", "h-big"], hosts.Select(h => h.WorkerId));
        Assert.Null(hosts[0].Capacity);
        Assert.Equal(new ResourceCapacity(65_536, null, 1), hosts[1].Capacity);
        Assert.Equal(["mail", "sms"], hosts[1].Queues);
        Assert.Equal(started, hosts[1].StartedAt);

        // Reporting again renews it and keeps its start; the other, silent, expires.
        Time.Advance(TimeSpan.FromSeconds(20));
        await queue.ReportHostAsync(new WorkerHostInfo("h-big", ["mail"], new ResourceCapacity(MemoryMb: 32_768)), HostTtl);
        Time.Advance(TimeSpan.FromSeconds(15));
        var big = Assert.Single(await queue.ListHostsAsync());
        Assert.Equal("h-big", big.WorkerId);
        Assert.Equal(started, big.StartedAt);
        Assert.Equal(started + TimeSpan.FromSeconds(20), big.SeenAt);
        Assert.Equal(["mail"], big.Queues);
        Assert.Equal(32_768, big.Capacity!.MemoryMb);

        // A host whose report expired starts a new life when it reports again.
        await queue.ReportHostAsync(new WorkerHostInfo("h-any", ["mail"], null), HostTtl);
        Assert.Equal(Time.GetUtcNow(), (await queue.ListHostsAsync()).Single(h => h.WorkerId == "h-any").StartedAt);

        Assert.True(await queue.RemoveHostAsync("h-big"));
        Assert.False(await queue.RemoveHostAsync("h-big"));
        Assert.Equal(["h-any"], (await queue.ListHostsAsync()).Select(h => h.WorkerId));
    }

    [Fact]
    public async Task Host_reports_are_validated_naming_the_field()
    {
        var queue = await CreateQueueAsync();
        Assert.Equal("host.Queues", (await Assert.ThrowsAsync<ArgumentException>(() => queue.ReportHostAsync(new WorkerHostInfo("h", [], null), HostTtl).AsTask())).ParamName);
        Assert.Equal("host.WorkerId", (await Assert.ThrowsAsync<ArgumentException>(() => queue.ReportHostAsync(new WorkerHostInfo(" ", ["q"], null), HostTtl).AsTask())).ParamName);
        Assert.Equal("host.Capacity.MemoryMb", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.ReportHostAsync(new WorkerHostInfo("h", ["q"], new ResourceCapacity(MemoryMb: -1)), HostTtl).AsTask())).ParamName);
        Assert.Equal("expiresAfter", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.ReportHostAsync(new WorkerHostInfo("h", ["q"], null), TimeSpan.Zero).AsTask())).ParamName);
        Assert.Empty(await queue.ListHostsAsync());
    }

    [Fact]
    public async Task Jobs_larger_than_every_live_host_of_their_queue_are_counted_as_oversized()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueManyAsync([Sized(600), Sized(1_200), Sized(100, gpus: 1), new JobRequest("k"), Sized(5_000, queue: "open"), Sized(5_000, queue: "unserved")]);
        await queue.EnqueueAsync(Sized(2_000) with { RunAt = Time.GetUtcNow().AddHours(1) }); // scheduled counts too
        await queue.ReportHostAsync(new WorkerHostInfo("big", [JobRequest.DefaultQueue], new ResourceCapacity(MemoryMb: 1_000, Gpus: 0)), HostTtl);
        await queue.ReportHostAsync(new WorkerHostInfo("small", [JobRequest.DefaultQueue, "open"], new ResourceCapacity(MemoryMb: 500, Gpus: 0)), HostTtl);
        await queue.ReportHostAsync(new WorkerHostInfo("unlimited", ["open"], null), HostTtl);

        async Task<Dictionary<string, QueueStats>> StatsAsync() => (await queue.GetQueueStatsAsync()).ToDictionary(s => s.Queue);

        // 1,200 and 2,000 MB fit neither host; the GPU job fits none (neither has a GPU; an amount left null would be unlimited); 600 fits "big".
        var stats = await StatsAsync();
        Assert.Equal((2, 3L), (stats[JobRequest.DefaultQueue].Hosts, stats[JobRequest.DefaultQueue].Oversized));
        Assert.Equal((2, 0L), (stats["open"].Hosts, stats["open"].Oversized)); // a host without a declared capacity holds anything
        Assert.Equal((0, 0L), (stats["unserved"].Hosts, stats["unserved"].Oversized)); // no host at all: lacking workers, not capacity

        // The large host goes: the 600 MB job fits nothing live now.
        Time.Advance(HostTtl + TimeSpan.FromSeconds(1));
        await queue.ReportHostAsync(new WorkerHostInfo("small", [JobRequest.DefaultQueue, "open"], new ResourceCapacity(MemoryMb: 500, Gpus: 0)), HostTtl);
        await queue.ReportHostAsync(new WorkerHostInfo("unlimited", ["open"], null), HostTtl);
        stats = await StatsAsync();
        Assert.Equal((1, 4L), (stats[JobRequest.DefaultQueue].Hosts, stats[JobRequest.DefaultQueue].Oversized));

        // A host with a GPU comes: the GPU job fits it; the three large ones still fit nothing.
        await queue.ReportHostAsync(new WorkerHostInfo("gpu", [JobRequest.DefaultQueue], new ResourceCapacity(MemoryMb: 200, Gpus: 1)), HostTtl);
        Assert.Equal(3L, (await StatsAsync())[JobRequest.DefaultQueue].Oversized);
    }

    [Fact]
    public async Task Activity_counts_finished_jobs_per_queue_and_minute_within_the_window()
    {
        var queue = await CreateQueueAsync();
        var old = (await queue.EnqueueAsync(new JobRequest("k") { Queue = "mail" })).JobId;
        await queue.CompleteAsync(Assert.Single(await queue.AcquireAsync(new AcquireRequest("mail", "w", 1, Lease))).Lease);
        Time.Advance(TimeSpan.FromHours(2)); // finished before the window

        var minute = new DateTimeOffset(Time.GetUtcNow().UtcTicks - Time.GetUtcNow().UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
        await queue.EnqueueManyAsync([new JobRequest("k") { Queue = "mail" }, new JobRequest("k") { Queue = "mail", MaxAttempts = 1 }, new JobRequest("k") { Queue = "sms" }]);
        var leased = await queue.AcquireAsync(new AcquireRequest("mail", "w", 2, Lease));
        await queue.CompleteAsync(leased[0].Lease);
        await queue.FailAsync(leased[1].Lease, "boom");
        Time.Advance(TimeSpan.FromMinutes(3));
        var sms = Assert.Single(await queue.ListJobsAsync(new JobListQuery { Queue = "sms" })).Id;
        Assert.Equal(CancelOutcome.Cancelled, await queue.CancelAsync(sms));

        var activity = await queue.GetActivityAsync(TimeSpan.FromHours(1));

        Assert.Equal(
            [new QueueActivity("mail", minute, 1, 1, 0), new QueueActivity("sms", minute.AddMinutes(3), 0, 0, 1)],
            activity);
        Assert.Equal(JobState.Succeeded, (await queue.GetJobAsync(old))!.State);
        Assert.Equal("window", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.GetActivityAsync(TimeSpan.FromSeconds(5)).AsTask())).ParamName);
    }
}
