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
