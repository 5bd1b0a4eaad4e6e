namespace Scheduling.Hosting;

/// <summary>
/// The outcome measures. What the handler did is known when it returns (run duration, span status);
/// what became of the job (succeeded, retried, dead, cancelled) only once the store applied the
/// acknowledgement, so those counters are fed by the store's answer, never by a guess.
/// </summary>
internal static class JobOutcomes
{
    /// <summary>The handler returned: its run duration by what it did.</summary>
    public static void Ran(AcquiredJob job, JobAck? ack, TimeSpan elapsed, System.Diagnostics.Activity? activity)
    {
        var outcome = ack?.Kind switch
        {
            JobAckKind.Succeeded => "succeeded",
            JobAckKind.Failed => "failed",
            JobAckKind.Cancelled => "cancelled",
            JobAckKind.Released => "released",
            JobAckKind.Snoozed => "snoozed",
            _ => "lease_lost",
        };
        if (ack is { Kind: JobAckKind.Failed } failed) activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, Truncate(failed.Error));
        SchedulingMetrics.RunDuration.Record(elapsed.TotalSeconds, Queue(job), Kind(job), new KeyValuePair<string, object?>("outcome", outcome));
        activity?.SetTag("scheduling.job.outcome", outcome);
    }

    /// <summary>The store applied (or refused, for a stale lease) an acknowledgement of <paramref name="job"/>.</summary>
    public static void Applied(AcquiredJob job, JobAckKind kind, AckResult result, bool completedInTransaction = false)
    {
        if (!result.Applied)
        {
            if (completedInTransaction) SchedulingMetrics.Succeeded.Add(1, Queue(job), Kind(job)); // its own transaction completed it
            return;
        }

        var queue = Queue(job);
        var jobKind = Kind(job);
        if (kind == JobAckKind.Failed) SchedulingMetrics.Failed.Add(1, queue, jobKind);
        switch (result.State)
        {
            case JobState.Succeeded:
                SchedulingMetrics.Succeeded.Add(1, queue, jobKind);
                break;
            case JobState.Dead:
                SchedulingMetrics.Dead.Add(1, queue, jobKind);
                break;
            case JobState.Cancelled:
                SchedulingMetrics.Cancelled.Add(1, queue, jobKind);
                break;
            case JobState.Available or JobState.Scheduled when kind == JobAckKind.Failed:
                SchedulingMetrics.Retried.Add(1, queue, jobKind);
                break;
        }
    }

    private static KeyValuePair<string, object?> Queue(AcquiredJob job) => new("queue", job.Queue);
    private static KeyValuePair<string, object?> Kind(AcquiredJob job) => new("kind", job.Kind);
    private static string? Truncate(string? error) => error is { Length: > 200 } ? error[..200] : error;
}
