namespace Scheduling;

/// <summary>Where a job is in its lifecycle.</summary>
public enum JobState
{
    /// <summary>Due in the future (its run-at time has not come yet, e.g. a retry in backoff).</summary>
    Scheduled = 0,

    /// <summary>Due and waiting for a worker.</summary>
    Available = 1,

    /// <summary>Held by a worker under a lease.</summary>
    Running = 2,

    /// <summary>Finished successfully (terminal).</summary>
    Succeeded = 3,

    /// <summary>Cancelled before or while running (terminal).</summary>
    Cancelled = 4,

    /// <summary>Failed on its last allowed attempt, or permanently (terminal; can be re-driven).</summary>
    Dead = 5,

    /// <summary>Waiting for parent jobs (<see cref="JobRequest.DependsOn"/>) to finish.</summary>
    Waiting = 6,

    /// <summary>Not started by its <see cref="JobRequest.LatestStartAt"/>: it never runs (terminal).</summary>
    Expired = 7,
}

/// <summary>Helpers over <see cref="JobState"/>.</summary>
public static class JobStates
{
    /// <summary>True for the states a job never leaves on its own.</summary>
    public static bool IsTerminal(this JobState state) =>
        state is JobState.Succeeded or JobState.Cancelled or JobState.Dead or JobState.Expired;
}
