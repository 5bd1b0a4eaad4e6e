using Xunit;

namespace Scheduling.Dashboard.Tests;

/// <summary>"Why hasn't this started?" for each reason a job can have.</summary>
public sealed class WhyNotStartedTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 8, 0, 0, TimeSpan.Zero);

    private static JobInfo Job(JobState state, Action<JobInfoBuilder>? change = null)
    {
        var b = new JobInfoBuilder { State = state };
        change?.Invoke(b);
        return new JobInfo
        {
            Id = 7, Queue = "q", Kind = "k", State = b.State, Priority = 0, EffectivePriority = 0, Attempt = 0, MaxAttempts = 3, RunAt = b.RunAt, CreatedAt = Now.AddHours(-1),
            Parents = b.Parents, LatestStartAt = b.LatestStartAt, PartitionKey = b.PartitionKey, Allocation = b.Allocation,
        };
    }

    private sealed class JobInfoBuilder
    {
        public JobState State;
        public DateTimeOffset RunAt = Now.AddMinutes(-1);
        public IReadOnlyList<JobLink> Parents = [];
        public DateTimeOffset? LatestStartAt;
        public string? PartitionKey;
        public ResourceAllocation? Allocation;
    }

    private static QueueStats Queue(int hosts = 1, bool paused = false, QueueLimits? limits = null, long due = 1) =>
        new("q", due, 0, 0, Now.AddMinutes(-1)) { Hosts = hosts, Paused = paused, Limits = limits ?? QueueLimits.None };

    private static readonly WorkerHostInfo Host = new("h", ["q"], new ResourceCapacity(MemoryMb: 1_000));

    private static string Only(IReadOnlyList<string> reasons) => Assert.Single(reasons);

    [Fact]
    public void Each_reason_is_said_in_words()
    {
        Assert.Equal("It is waiting on parents 3 (running), 4 (available).",
            Only(WhyNotStarted.Explain(Job(JobState.Waiting, j => j.Parents = [new JobLink(2, JobState.Succeeded), new JobLink(3, JobState.Running), new JobLink(4, JobState.Available)]), Queue(), [Host], Now)));
        Assert.Equal("It is not due until 2026-12-06 10:00:00 UTC (in 2 h).",
            Only(WhyNotStarted.Explain(Job(JobState.Scheduled, j => j.RunAt = Now.AddHours(2)), Queue(), [Host], Now)));
        Assert.Equal("Queue 'q' is paused.", Only(WhyNotStarted.Explain(Job(JobState.Available), Queue(paused: true), [Host], Now)));
        Assert.Equal("No live worker host serves queue 'q'.", Only(WhyNotStarted.Explain(Job(JobState.Available), Queue(hosts: 0), [], Now)));
        Assert.Equal("It needs 4,000 MB, 500m CPU, more than any live host serving 'q' can hold (the largest has 1,000 MB).",
            Only(WhyNotStarted.Explain(Job(JobState.Available, j => j.Allocation = new ResourceAllocation
            {
                DefinitionId = "d", MemoryMb = 4_000, CpuMillicores = 500, Gpus = 0, BaselineMemoryMb = 4_000, Source = AllocationSource.Baseline, SkipReason = AraSkipReason.None,
            }), Queue(), [Host], Now)));
        Assert.StartsWith("It is past its latest start (2026-12-06 07:59:00 UTC)",
            Only(WhyNotStarted.Explain(Job(JobState.Available, j => j.LatestStartAt = Now.AddMinutes(-1)), Queue(), [Host], Now)), StringComparison.Ordinal);
        var limited = WhyNotStarted.Explain(Job(JobState.Available, j => j.PartitionKey = "tenant-9"),
            Queue(limits: new QueueLimits { Rate = new RateLimit(10, TimeSpan.FromMinutes(1)), ConcurrencyPerKey = 2 }), [Host], Now);
        Assert.Equal(["Queue 'q' starts at most 10 job(s) per 60 s; it may be waiting for its allowance.", "At most 2 job(s) of key 'tenant-9' run at once; that key may be at its cap."], limited);
        Assert.Equal("It has been due since 2026-12-06 07:59:00 UTC and waits for a free worker slot: 41 other due job(s) in 'q', taken by priority 0 then due time.",
            Only(WhyNotStarted.Explain(Job(JobState.Available), Queue(due: 42), [Host], Now)));
        Assert.Equal("It has been due since 2026-12-06 07:59:00 UTC and waits for a free worker slot behind 12 due job(s) of 'q' that go first (a higher priority than its 0, or due earlier).",
            Only(WhyNotStarted.Explain(Job(JobState.Available), Queue(due: 42), [Host], Now, ahead: 12)));
        Assert.Contains("behind at least 1,000 due job(s)", Only(WhyNotStarted.Explain(Job(JobState.Available), Queue(due: 50_000), [Host], Now, ahead: WhyNotStarted.AheadCap)), StringComparison.Ordinal);
        Assert.Contains("is next in 'q'", Only(WhyNotStarted.Explain(Job(JobState.Available), Queue(due: 42), [Host], Now, ahead: 0)), StringComparison.Ordinal);
        Assert.StartsWith("It has finished (dead)", Only(WhyNotStarted.Explain(Job(JobState.Dead), Queue(), [Host], Now)), StringComparison.Ordinal);
    }
}
