using System.Text.Json;

namespace Scheduling;

/// <summary>
/// What a transition is decided from: the job's own facts at the moment it changes state.
/// </summary>
/// <param name="State">Its stored state (never <see cref="JobState.Scheduled"/>, which is only a view of available).</param>
/// <param name="Attempt">The attempt counted so far (the running one, while it runs).</param>
/// <param name="MaxAttempts">How many attempts it may have.</param>
/// <param name="CancelRequested">Someone asked to cancel it while it ran.</param>
/// <param name="LockedBy">The worker holding its lease, if it runs.</param>
/// <param name="Started">
/// For a running job: whether its host has reported it started (its first heartbeat). A job leased
/// but never started (fetched ahead, waiting for a slot) has not used its attempt.
/// </param>
/// <param name="UnstartedRescues">How many times it was rescued without having been reported started.</param>
/// <param name="Snoozes">How many times it was snoozed.</param>
public readonly record struct JobFacts(JobState State, int Attempt, int MaxAttempts, bool CancelRequested, string? LockedBy = null, bool Started = true, int UnstartedRescues = 0, int Snoozes = 0);

/// <summary>
/// A decided change of one job: its new state and what moves with it. Stores write exactly this;
/// the rules that chose it live in <see cref="JobTransitions"/> alone.
/// </summary>
/// <param name="State">The new stored state.</param>
/// <param name="RunAt">The new due time, or null to keep the job's own.</param>
/// <param name="FinalizedAt">When it finished, for a terminal state; null otherwise (clears it).</param>
/// <param name="AttemptChange">Added to the attempt count: -1 gives an attempt back, 0 keeps it, and a redrive resets it (see <see cref="ResetsAttempts"/>).</param>
/// <param name="Error">The error entry to append to the job's history, if any.</param>
public readonly record struct JobTransition(JobState State, DateTimeOffset? RunAt, DateTimeOffset? FinalizedAt, int AttemptChange, JobAttemptError? Error)
{
    /// <summary>True when the attempt count starts again from zero (a redrive) instead of changing by <see cref="AttemptChange"/>.</summary>
    public bool ResetsAttempts { get; init; }

    /// <summary>True for a rescue of a job that was never reported started: it counts towards <see cref="JobTransitions.MaxUnstartedRescues"/>.</summary>
    public bool CountsUnstartedRescue { get; init; }

    /// <summary>True for a snooze within the bound: it counts towards <see cref="JobTransitions.MaxSnoozes"/>.</summary>
    public bool CountsSnooze { get; init; }

    /// <summary>The job's new own priority (a snooze that asked for one); null keeps it. Its effective priority stays at least what waiting children lend it.</summary>
    public short? Priority { get; init; }

    /// <summary>True when the job ends here.</summary>
    public bool IsTerminal => State.IsTerminal();

    /// <summary>True when the job is due at once afterwards, so workers should be woken.</summary>
    public bool IsDueAt(DateTimeOffset now) => State == JobState.Available && (RunAt is null || RunAt <= now);
}

/// <summary>
/// The job state machine, in one place: from a job's facts, the clock and the backoff, the next
/// state of every transition (succeed, fail, release, rescue, cancel, redrive), with the error
/// texts and the error-history shape. Pure: both stores, the worker and its metrics call it, and
/// no store writes a rule of its own.
/// </summary>
/// <remarks>
/// Two rules run inside PostgreSQL's completing transaction and so have a PL/pgSQL twin:
/// releasing or cancelling waiting children (<c>settle_dependents</c>) and priority inheritance
/// (<c>recompute_priorities</c>); see <c>docs/architecture.md</c>.
/// </remarks>
public static class JobTransitions
{
    /// <summary>The text kept when a handler failed without a message.</summary>
    public const string NoErrorMessage = "(no error message)";


    /// <summary>What a job a worker held becomes when the worker acknowledges it.</summary>
    /// <param name="job">The job's facts under the acknowledged lease.</param>
    /// <param name="kind">How the worker finished with it.</param>
    /// <param name="error">For a failure, its (already trimmed) error text.</param>
    /// <param name="retryable">For a failure, false makes it dead at once.</param>
    /// <param name="now">The store's clock.</param>
    /// <param name="retryDelay">The backoff before a retry (<see cref="RetryBackoff.Delay"/> of the failed attempt), or a snooze's delay.</param>
    /// <param name="priority">For a snooze, the new priority it asked for, if any.</param>
    public static JobTransition Acknowledge(JobFacts job, JobAckKind kind, string? error, bool retryable, DateTimeOffset now, TimeSpan retryDelay, short? priority = null) => kind switch
    {
        JobAckKind.Succeeded => Finished(JobState.Succeeded, now, null), // done is done, even if cancellation came too late
        JobAckKind.Cancelled => Finished(JobState.Cancelled, now, null),
        JobAckKind.Released => Release(job, now),
        JobAckKind.Failed => Fail(job, error, retryable, now, retryDelay),
        JobAckKind.Snoozed => Snooze(job, now, retryDelay, priority),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown acknowledgement kind."),
    };

    /// <summary>
    /// Whether what an acknowledgement of <paramref name="kind"/> decides can depend on a cancellation
    /// requested while the job ran: a failure or a release becomes a cancellation then, a success
    /// or a cancellation does not. A store that cannot read the flag before it writes decides such
    /// an acknowledgement for both values and lets the row pick.
    /// </summary>
    public static bool DependsOnCancelRequest(JobAckKind kind) => kind is JobAckKind.Failed or JobAckKind.Released or JobAckKind.Snoozed;

    /// <summary>
    /// A failed attempt: a requested cancellation wins; a permanent error or the last allowed
    /// attempt makes the job dead; otherwise it is retried after <paramref name="retryDelay"/>.
    /// The error is kept in every case.
    /// </summary>
    public static JobTransition Fail(JobFacts job, string? error, bool retryable, DateTimeOffset now, TimeSpan retryDelay)
    {
        var entry = new JobAttemptError(job.Attempt, now, string.IsNullOrEmpty(error) ? NoErrorMessage : error);
        if (job.CancelRequested) return Finished(JobState.Cancelled, now, entry);
        if (!retryable || job.Attempt >= job.MaxAttempts) return Finished(JobState.Dead, now, entry);
        return new JobTransition(JobState.Available, now + retryDelay, null, 0, entry);
    }

    /// <summary>
    /// The worker gives the job back unstarted or unfinished (shutdown): the attempt is given back
    /// and the job is due again at its own time, unless cancellation was requested meanwhile.
    /// </summary>
    public static JobTransition Release(JobFacts job, DateTimeOffset now) =>
        job.CancelRequested ? Finished(JobState.Cancelled, now, null) : new JobTransition(JobState.Available, null, null, -1, null);

    /// <summary>How many times a job may be snoozed with its attempt given back; later snoozes count as failed attempts.</summary>
    public const int MaxSnoozes = 100;

    /// <summary>
    /// The handler snoozed the job: due again after <paramref name="delay"/> with its attempt given back
    /// and no error kept, up to <see cref="MaxSnoozes"/> times; after that a snooze is a failed attempt
    /// (retried after the delay, or dead on the last). A requested cancellation wins. A new
    /// <paramref name="priority"/> applies whenever the job is due again.
    /// </summary>
    public static JobTransition Snooze(JobFacts job, DateTimeOffset now, TimeSpan delay, short? priority = null)
    {
        if (job.CancelRequested) return Finished(JobState.Cancelled, now, null);
        if (job.Snoozes < MaxSnoozes) return new JobTransition(JobState.Available, now + delay, null, -1, null) { CountsSnooze = true, Priority = priority };
        var failed = Fail(job, $"The job was snoozed {MaxSnoozes} times, the most with attempts given back; this snooze counts as a failed attempt.", retryable: true, now, delay);
        return failed.State == JobState.Available ? failed with { Priority = priority } : failed;
    }

    /// <summary>
    /// How many times a job may be rescued without having been reported started before its attempt
    /// is charged anyway: so a job that kills its host before the first heartbeat cannot run forever.
    /// </summary>
    public const int MaxUnstartedRescues = 2;

    /// <summary>
    /// The job's lease expired (its worker died or lost its connection). A job its host never reported
    /// started (fetched ahead and waiting for a slot, or leased by a reply that was lost) is given
    /// back as it was, its attempt returned and no error kept, up to <see cref="MaxUnstartedRescues"/>
    /// times. Otherwise the attempt counts, as a failure with <see cref="LeaseExpiredMessage"/>,
    /// retried at once or dead when it was the last.
    /// </summary>
    public static JobTransition Rescue(JobFacts job, DateTimeOffset now)
    {
        if (!job.Started && job.UnstartedRescues < MaxUnstartedRescues && !job.CancelRequested)
            return new JobTransition(JobState.Available, now, null, -1, null) { CountsUnstartedRescue = true };
        var entry = new JobAttemptError(job.Attempt, now, LeaseExpiredMessage(job.LockedBy));
        if (job.CancelRequested) return Finished(JobState.Cancelled, now, entry);
        if (job.Attempt >= job.MaxAttempts) return Finished(JobState.Dead, now, entry);
        return new JobTransition(JobState.Available, now, null, 0, entry);
    }

    /// <summary>
    /// An application asks to cancel a job: one not started yet is cancelled now (the transition);
    /// a running one is asked to stop (its worker learns it at the next heartbeat); a finished one
    /// is left alone.
    /// </summary>
    public static (CancelOutcome Outcome, JobTransition? Transition) Cancel(JobFacts job, DateTimeOffset now) => job.State switch
    {
        JobState.Running => (CancelOutcome.CancellationRequested, null),
        _ when job.State.IsTerminal() => (CancelOutcome.AlreadyFinished, null),
        _ => (CancelOutcome.Cancelled, Finished(JobState.Cancelled, now, null)),
    };

    /// <summary>
    /// A job not started by its latest start time never starts: a waiting or available one ends
    /// <see cref="JobState.Expired"/>, with <see cref="ExpiredMessage"/> kept; null for any other state
    /// or a deadline not passed yet.
    /// </summary>
    public static JobTransition? Expire(JobFacts job, DateTimeOffset? latestStartAt, DateTimeOffset now) =>
        job.State is JobState.Waiting or JobState.Available && latestStartAt is { } latest && latest < now
            ? Finished(JobState.Expired, now, new JobAttemptError(job.Attempt, now, ExpiredMessage(latest)))
            : null;

    /// <summary>The error kept when a job expired unstarted.</summary>
    public static string ExpiredMessage(DateTimeOffset latestStartAt) => $"Not started by its latest start time {latestStartAt:O}; the job expired.";

    /// <summary>A dead job runs again from its first attempt, due now; null when the job is not dead (an expired job's deadline has passed: enqueue it anew).</summary>
    public static JobTransition? Redrive(JobFacts job, DateTimeOffset now) =>
        job.State == JobState.Dead ? new JobTransition(JobState.Available, now, null, 0, null) { ResetsAttempts = true } : null;

    /// <summary>The state a reader sees: an available job that is not due yet shows as <see cref="JobState.Scheduled"/>.</summary>
    public static JobState Visible(JobState state, DateTimeOffset runAt, DateTimeOffset now) =>
        state == JobState.Available && runAt > now ? JobState.Scheduled : state;

    /// <summary>The error kept when a lease expired and the job was rescued.</summary>
    public static string LeaseExpiredMessage(string? worker) => $"Lease held by worker '{worker}' expired; the job was rescued.";

    /// <summary>The error history as stored: a JSON array of <c>{"attempt", "at", "message"}</c> objects, oldest first.</summary>
    public static string ErrorsToJson(IEnumerable<JobAttemptError> errors) =>
        JsonSerializer.Serialize(errors.Select(e => new StoredError(e.Attempt, e.At, e.Message)).ToArray(), ErrorJsonContext.Default.StoredErrorArray);

    /// <summary>One error entry as stored (an element of <see cref="ErrorsToJson"/>).</summary>
    public static string ErrorToJson(JobAttemptError error) => JsonSerializer.Serialize(new StoredError(error.Attempt, error.At, error.Message), ErrorJsonContext.Default.StoredError);

    /// <summary>Reads an error history written by <see cref="ErrorsToJson"/> (or its PL/pgSQL twin in <c>settle_dependents</c>).</summary>
    public static JobAttemptError[] ErrorsFromJson(string json) =>
        (JsonSerializer.Deserialize(json, ErrorJsonContext.Default.StoredErrorArray) ?? []).Select(e => new JobAttemptError(e.Attempt, e.At, e.Message ?? "")).ToArray();

    private static JobTransition Finished(JobState state, DateTimeOffset now, JobAttemptError? error) => new(state, null, now, 0, error);
}
