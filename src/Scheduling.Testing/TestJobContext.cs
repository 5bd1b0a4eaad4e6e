using Scheduling.Internal;
namespace Scheduling.Testing;

/// <summary>The job a handler sees when a test calls it directly (<see cref="TestJobContext"/>).</summary>
public sealed record TestJob
{
    /// <summary>The job's id (default 1).</summary>
    public long Id { get; init; } = 1;

    /// <summary>The kind (default "test").</summary>
    public string Kind { get; init; } = "test";

    /// <summary>The queue (default "default").</summary>
    public string Queue { get; init; } = "default";

    /// <summary>The attempt now running, from 1 (default 1).</summary>
    public int Attempt { get; init; } = 1;

    /// <summary>The attempts allowed (default 25, as for an enqueued job).</summary>
    public int MaxAttempts { get; init; } = JobRequest.DefaultMaxAttempts;

    /// <summary>The priority.</summary>
    public int Priority { get; init; }

    /// <summary>When the job became due, and was enqueued (default: now on <see cref="TimeProvider.System"/>).</summary>
    public DateTimeOffset? RunAt { get; init; }

    /// <summary>The final command, if any.</summary>
    public string? Command { get; init; }

    /// <summary>What ARA gave the run, if anything.</summary>
    public ResourceAllocation? Allocation { get; init; }
}

/// <summary>
/// Contexts for calling a handler directly in a unit test, without a queue:
/// <c>await handler.HandleAsync(TestJobContext.Create(new EmailJob("a@example.com")), token)</c>;
/// afterwards <see cref="JobContext{TPayload}.Usage"/> holds what the handler reported.
/// </summary>
public static class TestJobContext
{
    /// <summary>A context with <paramref name="payload"/> for the job <paramref name="job"/> describes (attempt 1 of 25 by default).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The attempt is below 1 or above the attempts allowed.</exception>
    public static JobContext<TPayload> Create<TPayload>(TPayload payload, TestJob? job = null)
    {
        job ??= new TestJob();
        if (job.MaxAttempts < 1) throw new ArgumentOutOfRangeException(nameof(job), job.MaxAttempts, $"TestJob.MaxAttempts must be at least 1 (was {job.MaxAttempts}).");
        if (job.Attempt < 1 || job.Attempt > job.MaxAttempts)
            throw new ArgumentOutOfRangeException(nameof(job), job.Attempt, $"TestJob.Attempt must be between 1 and MaxAttempts ({job.MaxAttempts}); was {job.Attempt}.");
        var at = job.RunAt ?? TimeProvider.System.GetUtcNow();
        var acquired = new AcquiredJob
        {
            Id = job.Id,
            Queue = job.Queue,
            Kind = job.Kind,
            Priority = job.Priority,
            RunAt = at,
            CreatedAt = at,
            Lease = new JobLease(job.Id, Guid.NewGuid(), job.Attempt, job.MaxAttempts),
            LeaseExpiresAt = at.AddMinutes(5),
            Command = job.Command,
            Allocation = job.Allocation,
            PayloadJson = payload is null ? null : PayloadSerializer.Serialize(payload, PayloadSerializer.Default),
        };
        return new JobContext<TPayload>(acquired, payload);
    }
}
