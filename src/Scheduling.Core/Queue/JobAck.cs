namespace Scheduling;

/// <summary>How a worker finished with a job.</summary>
public enum JobAckKind
{
    /// <summary>The handler succeeded.</summary>
    Succeeded = 0,
    /// <summary>The handler failed: retried after a backoff, or dead when attempts are exhausted or the error is permanent.</summary>
    Failed = 1,
    /// <summary>The handler stopped because cancellation was requested.</summary>
    Cancelled = 2,
    /// <summary>The worker gives the job back unfinished (shutdown); the attempt does not count and it is due at once.</summary>
    Released = 3,
    /// <summary>The handler asked to run again after <see cref="JobAck.Delay"/> (<see cref="SnoozeJobException"/>): the attempt is given back, up to <see cref="JobTransitions.MaxSnoozes"/> times.</summary>
    Snoozed = 4,
}

/// <summary>A worker's acknowledgement of one job it holds.</summary>
/// <param name="Lease">The lease from acquisition; a stale lease makes the acknowledgement a no-op.</param>
/// <param name="Kind">How the job ended.</param>
/// <param name="Error">For failures, the error to keep with the attempt.</param>
/// <param name="Retryable">For failures, false makes the job dead at once.</param>
public readonly record struct JobAck(JobLease Lease, JobAckKind Kind, string? Error = null, bool Retryable = true)
{
    /// <summary>What the run used, recorded in the run history of jobs with a definition and a command.</summary>
    public ResourceUsage? Usage { get; init; }

    /// <summary>How long the run took, recorded with <see cref="Usage"/>.</summary>
    public TimeSpan? RunDuration { get; init; }

    /// <summary>For a snooze, how long until the job is due again.</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>For a snooze, how many times the job had been snoozed before (<see cref="AcquiredJob.Snoozes"/>: the lease fences it).</summary>
    public int Snoozes { get; init; }

    /// <summary>
    /// True for the acknowledgement a worker writes after its handler completed the job inside its own
    /// transaction (<see cref="JobOutput.CompletedInTransaction"/>): a refusal (that transaction committed) is expected, not stale.
    /// </summary>
    public bool CompletedInTransaction { get; init; }

    /// <summary>The job's latest progress report that no heartbeat has written yet, written with this acknowledgement when it applies.</summary>
    public JobProgress? Progress { get; init; }

    /// <summary>For a success, the result the handler set (<see cref="JobOutput"/>), stored with the job.</summary>
    public string? ResultJson { get; init; }

    /// <summary>For a snooze, the job's new priority (null: it keeps its own).</summary>
    public int? Priority { get; init; }

    /// <summary>
    /// A snooze of <paramref name="job"/>: due again after <paramref name="delay"/>, its attempt given
    /// back, with <paramref name="priority"/> as its new priority when one is given (its effective
    /// priority stays at least what waiting children lend it).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The priority is outside -32768..32767.</exception>
    public static JobAck Snooze(AcquiredJob job, TimeSpan delay, int? priority = null)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (priority is < short.MinValue or > short.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(priority), priority, "A priority is between -32768 and 32767.");
        return new JobAck(job.Lease, JobAckKind.Snoozed) { Delay = delay, Snoozes = job.Snoozes, Priority = priority };
    }

    /// <summary>A success.</summary>
    public static JobAck Success(JobLease lease) => new(lease, JobAckKind.Succeeded);

    /// <summary>A failure, retried unless <paramref name="retryable"/> is false or attempts are exhausted.</summary>
    public static JobAck Failure(JobLease lease, string error, bool retryable = true) => new(lease, JobAckKind.Failed, error, retryable);
}

/// <summary>What an acknowledgement did.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Applied">False when the lease was stale (expired and rescued, or already acknowledged).</param>
/// <param name="State">The job's state after the acknowledgement, when applied.</param>
public readonly record struct AckResult(long JobId, bool Applied, JobState? State);

/// <summary>What <see cref="IJobQueue.CancelAsync"/> did.</summary>
public enum CancelOutcome
{
    /// <summary>The job had not started and is now cancelled.</summary>
    Cancelled = 0,
    /// <summary>The job is running; its worker is asked to stop at its next heartbeat.</summary>
    CancellationRequested = 1,
    /// <summary>The job had already finished; nothing changed.</summary>
    AlreadyFinished = 2,
    /// <summary>No job has that id.</summary>
    NotFound = 3,
}
