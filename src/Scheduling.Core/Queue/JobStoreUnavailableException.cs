namespace Scheduling;

/// <summary>
/// The job store refuses this host for a reason retrying cannot fix by itself (a database that does
/// not exist, a wrong password, missing privileges): the message names the cause and the fix. A worker
/// host logs it once at Critical, reports it in its health check, and keeps trying quietly, so it
/// recovers once an operator fixes the cause.
/// </summary>
public sealed class JobStoreUnavailableException : Exception
{
    /// <summary>Creates the exception with the cause and the fix in <paramref name="message"/>.</summary>
    public JobStoreUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public JobStoreUnavailableException()
    {
    }

    /// <summary>Creates the exception with the cause and the fix in <paramref name="message"/>.</summary>
    public JobStoreUnavailableException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// Thrown when a handler completes its job in its own transaction but no longer holds the job's lease
/// (it was rescued and may be running elsewhere, or it was cancelled or finished): nothing was
/// written, and the transaction should be rolled back so its effects do not happen twice.
/// </summary>
public sealed class JobLeaseLostException : InvalidOperationException
{
    /// <summary>Creates the exception for job <paramref name="jobId"/>.</summary>
    public JobLeaseLostException(long jobId)
        : base($"Job {jobId}'s lease is no longer held (it was rescued, cancelled or finished): its completion was not written; roll back the transaction.") => JobId = jobId;

    /// <summary>The job.</summary>
    public long JobId { get; }
}
