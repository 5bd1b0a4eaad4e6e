namespace Scheduling;

/// <summary>
/// Which jobs <see cref="IJobQueue.ListJobsAsync"/> returns: those matching every filter that is
/// set, newest (largest id) first, a page at a time.
/// </summary>
public sealed record JobListQuery
{
    /// <summary>The most jobs one call returns.</summary>
    public const int MaxLimit = 10_000;

    private readonly IReadOnlyList<JobState>? _states;
    private readonly int _limit = 100;
    private readonly string? _errorContains;

    /// <summary>Only jobs of this queue.</summary>
    public string? Queue { get; init; }

    /// <summary>Only jobs of this kind.</summary>
    public string? Kind { get; init; }

    /// <summary>Only jobs in these states, as readers see them (<see cref="JobState.Scheduled"/>: not due yet); null or empty for any.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is not a job state.</exception>
    public IReadOnlyList<JobState>? States
    {
        get => _states;
        init
        {
            foreach (var state in value ?? [])
            {
                if (!Enum.IsDefined(state)) throw new ArgumentOutOfRangeException(nameof(States), state, $"JobListQuery.States holds {(int)state}, which is not a job state.");
            }

            _states = value?.ToArray();
        }
    }

    /// <summary>Only the parents of this job (the jobs it depends on).</summary>
    public long? ParentsOf { get; init; }

    /// <summary>Only the members and callbacks of this batch (<see cref="JobInfo.BatchId"/>).</summary>
    public long? BatchId { get; init; }

    /// <summary>Only jobs enqueued at or after this time.</summary>
    public DateTimeOffset? CreatedFrom { get; init; }

    /// <summary>Only jobs enqueued before this time.</summary>
    public DateTimeOffset? CreatedBefore { get; init; }

    /// <summary>Only jobs with this unique key (<see cref="JobRequest.UniqueKey"/>), in any state.</summary>
    public string? UniqueKey { get; init; }

    /// <summary>The most characters <see cref="ErrorContains"/> takes.</summary>
    public const int MaxErrorTextLength = 200;

    /// <summary>
    /// Only jobs with an attempt error whose message contains this text, ignoring case (1 to
    /// <see cref="MaxErrorTextLength"/> characters; taken as text, never as a pattern).
    /// </summary>
    /// <exception cref="ArgumentException">The text is empty or longer than that.</exception>
    public string? ErrorContains
    {
        get => _errorContains;
        init => _errorContains = value is null || value.Length is >= 1 and <= MaxErrorTextLength ? value
            : throw new ArgumentException($"JobListQuery.ErrorContains must be 1 to {MaxErrorTextLength} characters (was {value.Length}).", nameof(ErrorContains));
    }

    /// <summary>The next page (keyset, never an offset): only jobs with ids below this one, the last id of the previous page.</summary>
    public long? BeforeId { get; init; }

    /// <summary>
    /// Only jobs with ids at or above this one: bounds what a search costs when no index serves its filters
    /// (a kind, an error's text, a time window), so a caller can search a window of ids at a time, going
    /// further back with <see cref="BeforeId"/> set to this value.
    /// </summary>
    public long? FromId { get; init; }

    /// <summary>At most this many jobs, 1 to <see cref="MaxLimit"/> (default 100).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is out of that range.</exception>
    public int Limit
    {
        get => _limit;
        init => _limit = value is >= 1 and <= MaxLimit ? value : throw new ArgumentOutOfRangeException(nameof(Limit), value, $"JobListQuery.Limit must be between 1 and {MaxLimit} (was {value}).");
    }

    /// <summary>Whether a job with these facts (its state as readers see it) matches the filters other than the page.</summary>
    internal bool Matches(long id, string queue, string kind, JobState visibleState, DateTimeOffset createdAt, string? uniqueKey, IEnumerable<JobAttemptError> errors) =>
        (Queue is null || Queue == queue) && (Kind is null || Kind == kind) && (States is not { Count: > 0 } || States.Contains(visibleState))
        && (CreatedFrom is null || createdAt >= CreatedFrom) && (CreatedBefore is null || createdAt < CreatedBefore) && (BeforeId is null || id < BeforeId)
        && (FromId is null || id >= FromId) && (UniqueKey is null || UniqueKey == uniqueKey)
        && (ErrorContains is null || errors.Any(e => e.Message.ToLowerInvariant().Contains(ErrorContains.ToLowerInvariant(), StringComparison.Ordinal)));

    /// <summary>Whether a job of batch <paramref name="batchId"/> matches the batch filter.</summary>
    internal bool MatchesBatch(long? batchId) => BatchId is null || BatchId == batchId;
}
