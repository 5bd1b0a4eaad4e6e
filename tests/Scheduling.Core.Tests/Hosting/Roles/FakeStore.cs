namespace Scheduling.Core.Tests.Hosting.Roles;

/// <summary>
/// A store for testing the worker roles alone: each call does what the test says, and a call the
/// test did not expect fails loudly.
/// </summary>
internal sealed class FakeStore : IJobWorkerStore
{
    public Func<IReadOnlyList<JobAck>, IReadOnlyList<AckResult>>? OnAcknowledge { get; set; }
    public Func<IReadOnlyList<JobLease>, IReadOnlyList<HeldLease>>? OnHeartbeat { get; set; }
    public Func<int>? OnRescue { get; set; }
    public Func<int>? OnExpire { get; set; }
    public Func<AcquireRequest, CancellationToken, Task<IReadOnlyList<AcquiredJob>>>? OnAcquire { get; set; }

    public List<IReadOnlyList<JobAck>> Acknowledged { get; } = [];

    /// <summary>The progress each heartbeat carried, in order.</summary>
    public List<IReadOnlyList<JobProgressUpdate>> ProgressSent { get; } = [];

    public ValueTask<IReadOnlyList<AckResult>> AcknowledgeAsync(IReadOnlyList<JobAck> acks, CancellationToken cancellationToken = default)
    {
        lock (Acknowledged) Acknowledged.Add(acks.ToArray());
        return ValueTask.FromResult((OnAcknowledge ?? Unexpected<IReadOnlyList<JobAck>, IReadOnlyList<AckResult>>())(acks));
    }

    public ValueTask<IReadOnlyList<HeldLease>> HeartbeatAsync(string workerId, IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, IReadOnlyList<JobProgressUpdate>? progress = null, CancellationToken cancellationToken = default)
    {
        lock (ProgressSent) ProgressSent.Add(progress?.ToArray() ?? []);
        return ValueTask.FromResult((OnHeartbeat ?? Unexpected<IReadOnlyList<JobLease>, IReadOnlyList<HeldLease>>())(leases));
    }

    public ValueTask<int> ExpireOverdueAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(OnExpire?.Invoke() ?? 0);

    public ValueTask<int> RescueExpiredLeasesAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult((OnRescue ?? (() => throw new InvalidOperationException("unexpected rescue")))());

    public ValueTask<IReadOnlyList<AcquiredJob>> AcquireAsync(AcquireRequest request, CancellationToken cancellationToken = default) =>
        OnAcquire is { } acquire ? new(acquire(request, cancellationToken)) : throw new NotSupportedException();
    /// <summary>What each host report said (and for how long), in order; <see cref="OnReportHost"/> may throw to inject a failure.</summary>
    public List<(WorkerHostInfo Host, TimeSpan ExpiresAfter)> HostReports { get; } = [];

    public Action<WorkerHostInfo>? OnReportHost { get; set; }

    public List<string> HostsRemoved { get; } = [];

    public ValueTask ReportHostAsync(WorkerHostInfo host, TimeSpan expiresAfter, CancellationToken cancellationToken = default)
    {
        lock (HostReports) HostReports.Add((host, expiresAfter));
        OnReportHost?.Invoke(host);
        return ValueTask.CompletedTask;
    }

    public Action<string>? OnRemoveHost { get; set; }

    public ValueTask<bool> RemoveHostAsync(string workerId, CancellationToken cancellationToken = default)
    {
        lock (HostsRemoved) HostsRemoved.Add(workerId);
        OnRemoveHost?.Invoke(workerId);
        return ValueTask.FromResult(true);
    }

    public ValueTask<int> PurgeFinishedAsync(TimeSpan olderThan, int batchSize, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    /// <summary>A job as the store would hand it out.</summary>
    public static AcquiredJob Job(long id, string queue = "q", string kind = "k", int attempt = 1, int maxAttempts = 3) => new()
    {
        Id = id, Queue = queue, Kind = kind, Priority = 0, RunAt = DateTimeOffset.UnixEpoch, CreatedAt = DateTimeOffset.UnixEpoch,
        Lease = new JobLease(id, Guid.NewGuid(), attempt, maxAttempts), LeaseExpiresAt = DateTimeOffset.UnixEpoch.AddMinutes(1),
    };

    private static Func<TIn, TOut> Unexpected<TIn, TOut>() => _ => throw new InvalidOperationException($"unexpected call taking {typeof(TIn).Name}");
}
