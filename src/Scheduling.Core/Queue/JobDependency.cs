namespace Scheduling;

/// <summary>
/// A parent a job waits for: an existing job by id, or another request of the same
/// <see cref="IJobQueue.EnqueueManyAsync"/> call by its <see cref="JobRequest.LocalKey"/>.
/// </summary>
public readonly record struct JobDependency
{
    private JobDependency(long? jobId, string? localKey)
    {
        JobId = jobId;
        LocalKey = localKey;
    }

    /// <summary>The id of an existing job, or null for a reference within the call.</summary>
    public long? JobId { get; }

    /// <summary>The <see cref="JobRequest.LocalKey"/> of a request in the same call, or null for an existing job.</summary>
    public string? LocalKey { get; }

    /// <summary>Depends on a job that already exists (it may be running or even finished).</summary>
    public static JobDependency OnJob(long jobId) => new(jobId, null);

    /// <summary>Depends on the request of the same call whose <see cref="JobRequest.LocalKey"/> is <paramref name="localKey"/>.</summary>
    public static JobDependency OnRequest(string localKey) => new(null, localKey);

    /// <summary>Depends on an existing job by id.</summary>
    public static implicit operator JobDependency(long jobId) => OnJob(jobId);

    /// <summary>Depends on an existing job by id.</summary>
    public static JobDependency FromInt64(long jobId) => OnJob(jobId);

    /// <inheritdoc />
    public override string ToString() => JobId is { } id ? $"job {id}" : $"local '{LocalKey}'";
}

/// <summary>What a waiting job does when one of its parents ends dead or cancelled.</summary>
public enum ParentFailurePolicy
{
    /// <summary>The job is cancelled, and so are its own waiting descendants that use this policy (default).</summary>
    CancelChild = 0,

    /// <summary>The failed parent counts as finished: the job runs once its other parents are done.</summary>
    RunAnyway = 1,
}

/// <summary>A parent or child of a job, as inspection shows it.</summary>
/// <param name="JobId">The related job.</param>
/// <param name="State">Its state when read.</param>
public readonly record struct JobLink(long JobId, JobState State);
