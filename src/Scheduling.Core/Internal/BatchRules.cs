namespace Scheduling.Internal;

/// <summary>
/// A batch's counts: how many members it has and how they stand. Moved once per member
/// transition into or out of a terminal state, in the transaction of that transition.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public readonly record struct BatchCounts(int Total, int Pending, int Succeeded, int Failed, int Cancelled)
{
    /// <summary>New members in their initial states (a member born cancelled counts as finished at once).</summary>
    public BatchCounts Add(IEnumerable<JobState> initialStates)
    {
        var counts = this;
        foreach (var state in initialStates) counts = (counts with { Total = counts.Total + 1, Pending = counts.Pending + 1 }).Move(JobState.Waiting, state);
        return counts;
    }

    /// <summary>
    /// A member moved from <paramref name="from"/> to <paramref name="to"/>: into a terminal state it
    /// leaves pending for its outcome; out of one (a redrive) it is pending again; otherwise nothing changes.
    /// </summary>
    public BatchCounts Move(JobState from, JobState to)
    {
        var counts = this;
        if (from.IsTerminal()) counts = counts.Shift(BatchRules.OutcomeOf(from), -1);
        if (to.IsTerminal()) counts = counts.Shift(BatchRules.OutcomeOf(to), +1);
        return counts;
    }

    private BatchCounts Shift(JobState outcome, int by) => outcome switch
    {
        JobState.Succeeded => this with { Succeeded = Succeeded + by, Pending = Pending - by },
        JobState.Cancelled => this with { Cancelled = Cancelled + by, Pending = Pending - by },
        _ => this with { Failed = Failed + by, Pending = Pending - by },
    };
}

/// <summary>
/// The batch rules, in one place (their PL/pgSQL twin is <c>Functions/count_batch_member.sql</c>): how a
/// member's end is counted, when a batch settles, what its callbacks do then, and how a settled
/// batch counts in the batch it is a member of.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class BatchRules
{
    /// <summary>
    /// The outcome a terminal state counts as: succeeded, cancelled, or failed (dead or expired).
    /// </summary>
    public static JobState OutcomeOf(JobState terminal) => terminal switch
    {
        JobState.Succeeded => JobState.Succeeded,
        JobState.Cancelled => JobState.Cancelled,
        _ => JobState.Dead,
    };

    /// <summary>A batch settles, once, when no member is pending; a settled batch stays settled (a redriven member is counted but fires nothing again).</summary>
    public static bool Settles(BatchCounts counts, bool settled) => !settled && counts.Pending <= 0;

    /// <summary>The on-success callback runs only when no member failed or was cancelled.</summary>
    public static bool SuccessCallbackRuns(BatchCounts counts) => counts.Failed == 0 && counts.Cancelled == 0;

    /// <summary>The error kept on an on-success callback that does not run.</summary>
    public static string SuccessCallbackCancelled(long batchId, BatchCounts counts) =>
        $"Batch {batchId} settled with {counts.Failed} failed and {counts.Cancelled} cancelled of {counts.Total} members; its on-success callback does not run.";

    /// <summary>How a settled nested batch counts in its parent batch: failed when a member failed, else cancelled when one was cancelled, else succeeded.</summary>
    public static JobState AsMember(BatchCounts counts) =>
        counts.Failed > 0 ? JobState.Dead : counts.Cancelled > 0 ? JobState.Cancelled : JobState.Succeeded;

    /// <summary>The error when members are added to, or a batch nested in, a batch that does not exist.</summary>
    public static string NoSuchBatch(long batchId) => $"There is no batch {batchId}.";

    /// <summary>The error when members are added to, or a batch nested in, a batch that has settled.</summary>
    public static string AlreadySettled(long batchId) => $"Batch {batchId} has settled (its callbacks were released); members can be added only while it has pending members.";

    /// <summary>Validates a batch request, naming the property that is wrong; the members are validated as an enqueue call's requests.</summary>
    public static void Validate(BatchRequest request, string parameterName = "batch")
    {
        ArgumentNullException.ThrowIfNull(request, parameterName);
        if (request.Jobs is null) throw new ArgumentNullException($"{parameterName}.{nameof(BatchRequest.Jobs)}", "A batch needs its member jobs.");
        if (request.Jobs.Count == 0) throw new ArgumentException("A batch needs at least one member job: an empty batch would settle before anything could join it.", $"{parameterName}.{nameof(BatchRequest.Jobs)}");
        if (request.ParentBatchId is < 1) throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(BatchRequest.ParentBatchId)}", request.ParentBatchId, "Batch ids are positive.");
        ValidateCallback(request.OnSuccess, $"{parameterName}.{nameof(BatchRequest.OnSuccess)}");
        ValidateCallback(request.OnComplete, $"{parameterName}.{nameof(BatchRequest.OnComplete)}");
    }

    /// <summary>Validates what <see cref="IJobQueue.AddToBatchAsync"/> was given (the jobs themselves are validated as an enqueue call).</summary>
    public static void ValidateAdd(long batchId, IReadOnlyList<JobRequest> jobs)
    {
        if (batchId < 1) throw new ArgumentOutOfRangeException(nameof(batchId), batchId, "Batch ids are positive.");
        ArgumentNullException.ThrowIfNull(jobs);
        if (jobs.Count == 0) throw new ArgumentException("Give at least one job to add to the batch.", nameof(jobs));
    }

    private static void ValidateCallback(JobRequest? callback, string parameterName)
    {
        if (callback is null) return;
        if (callback.DependsOn is { Count: > 0 })
            throw new ArgumentException("A batch callback waits for its batch and must not depend on other jobs; let other jobs depend on it instead.", $"{parameterName}.{nameof(JobRequest.DependsOn)}");
        if (callback.UniqueKey is not null || callback.UniqueByPayload || callback.UniquePeriod is not null)
            throw new ArgumentException("A batch callback belongs to its batch alone and must not have a unique key (it could return another job).", $"{parameterName}.{nameof(JobRequest.UniqueKey)}");
        if (callback.LocalKey is not null)
            throw new ArgumentException("A batch callback cannot be referenced by local key; members finish before it runs.", $"{parameterName}.{nameof(JobRequest.LocalKey)}");
    }
}
