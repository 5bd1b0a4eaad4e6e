namespace Scheduling.Internal;

/// <summary>
/// The order in which due jobs are acquired, by a sort key stored with each job: a rank (larger
/// first) and a time (earlier first), then the smaller id. Strict priority: rank = effective
/// priority, time = run-at. Aging: rank = 0, time = run-at - effective priority x step, so a job
/// gains one level per step it waits without anything rewriting it. Deadline ordering: the time is at
/// most the job's latest start less the deadline lead. PostgreSQL computes the same key (the generated
/// columns sort_rank and sort_at, migrations 17 and 20) and indexes it.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class JobOrder
{
    /// <summary>An aging step or deadline lead as stored: whole microseconds, or null when the option is off.</summary>
    public static long? StepMicroseconds(TimeSpan? agingStep) => agingStep is { } step ? step.Ticks / 10 : null;

    /// <summary>The stored sort rank: the effective priority under strict priority, zero with aging.</summary>
    public static short Rank(int effectivePriority, long? agingStepUs) => agingStepUs is null ? (short)effectivePriority : (short)0;

    /// <summary>
    /// The stored sort time: run-at, less one aging step per priority level when aging is on; and no later
    /// than the latest start less the deadline lead, when the job has both.
    /// </summary>
    public static DateTimeOffset At(DateTimeOffset runAt, int effectivePriority, long? agingStepUs, DateTimeOffset? latestStartAt = null, long? deadlineLeadUs = null)
    {
        var at = agingStepUs is { } step ? runAt.AddTicks(-effectivePriority * step * 10) : runAt;
        if (latestStartAt is { } latest && deadlineLeadUs is { } lead && latest.AddTicks(-lead * 10) is var urgent && urgent < at) return urgent;
        return at;
    }

    /// <summary>Compares two jobs in acquisition order (the fetch index's order).</summary>
    public static int Compare(short rankA, DateTimeOffset atA, long idA, short rankB, DateTimeOffset atB, long idB)
    {
        var byRank = rankB.CompareTo(rankA);
        if (byRank != 0) return byRank;
        var byAt = atA.CompareTo(atB);
        return byAt != 0 ? byAt : idA.CompareTo(idB);
    }
}
