namespace Scheduling.Postgres.Statements;

/// <summary>
/// The one mapping between the library's enums and the text the jobs table stores (its CHECK
/// constraints list the same words). An unknown value either way is an error, never a default.
/// </summary>
internal static class StateCodec
{
    public static string ToText(JobState state) => state switch
    {
        JobState.Waiting => "waiting",
        JobState.Available => "available",
        JobState.Running => "running",
        JobState.Succeeded => "succeeded",
        JobState.Cancelled => "cancelled",
        JobState.Dead => "dead",
        JobState.Expired => "expired",
        // Scheduled is how readers see an available job that is not due; it is never stored.
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, $"The job state {state} is never stored."),
    };

    /// <summary>A state as readers see it (job_visible_state's words: scheduled too).</summary>
    public static string VisibleText(JobState state) => state == JobState.Scheduled ? "scheduled" : ToText(state);

    public static JobState Parse(string state) => state switch
    {
        "waiting" => JobState.Waiting,
        "available" => JobState.Available,
        "scheduled" => JobState.Scheduled,
        "running" => JobState.Running,
        "succeeded" => JobState.Succeeded,
        "cancelled" => JobState.Cancelled,
        "dead" => JobState.Dead,
        "expired" => JobState.Expired,
        _ => throw new InvalidOperationException($"Unknown job state '{state}' in the database."),
    };

    public static string ToText(ParentFailurePolicy policy) => policy switch
    {
        ParentFailurePolicy.CancelChild => "cancel",
        ParentFailurePolicy.RunAnyway => "run",
        _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, $"Unknown parent-failure policy {(int)policy}."),
    };

    public static ParentFailurePolicy ParsePolicy(string policy) => policy switch
    {
        "cancel" => ParentFailurePolicy.CancelChild,
        "run" => ParentFailurePolicy.RunAnyway,
        _ => throw new InvalidOperationException($"Unknown parent-failure policy '{policy}' in the database."),
    };

    public static string ToText(MisfirePolicy policy) => policy switch
    {
        MisfirePolicy.FireOnce => "fire-once",
        MisfirePolicy.Skip => "skip",
        MisfirePolicy.CatchUp => "catch-up",
        _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, $"Unknown misfire policy {(int)policy}."),
    };

    public static MisfirePolicy ParseMisfire(string policy) => policy switch
    {
        "fire-once" => MisfirePolicy.FireOnce,
        "skip" => MisfirePolicy.Skip,
        "catch-up" => MisfirePolicy.CatchUp,
        _ => throw new InvalidOperationException($"Unknown misfire policy '{policy}' in the database."),
    };
}
