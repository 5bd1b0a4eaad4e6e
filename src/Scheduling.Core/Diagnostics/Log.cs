using Microsoft.Extensions.Logging;

namespace Scheduling;

/// <summary>The worker host's log messages; event ids 2000-2999.</summary>
internal static partial class Log
{
    [LoggerMessage(2000, LogLevel.Information, "Worker {WorkerId} started on queues {Queues}")]
    public static partial void WorkerStarted(ILogger logger, string workerId, string queues);

    [LoggerMessage(2001, LogLevel.Information, "Worker {WorkerId} stopped; {Released} unfinished job(s) released")]
    public static partial void WorkerStopped(ILogger logger, string workerId, int released);

    [LoggerMessage(2002, LogLevel.Warning, "Fetching from queue {Queue} failed; retrying in {Delay}")]
    public static partial void FetchFailed(ILogger logger, Exception exception, string queue, TimeSpan delay);

    [LoggerMessage(2003, LogLevel.Warning, "No handler is registered for job kind '{Kind}' (job {JobId}, queue {Queue}); the attempt fails")]
    public static partial void UnknownKind(ILogger logger, string kind, long jobId, string queue);

    [LoggerMessage(2005, LogLevel.Warning, "Writing {Count} acknowledgement(s) failed; retrying in {Delay}")]
    public static partial void AckWriteFailed(ILogger logger, Exception exception, int count, TimeSpan delay);

    [LoggerMessage(2006, LogLevel.Warning, "Acknowledgement of job {JobId} was stale (its lease had expired and it was rescued): its outcome is not recorded and it runs again")]
    public static partial void StaleAck(ILogger logger, long jobId);

    [LoggerMessage(2020, LogLevel.Error, "The store refused the acknowledgement of job {JobId} for what it holds; writing it again with its error text escaped")]
    public static partial void AckRefused(ILogger logger, Exception exception, long jobId);

    [LoggerMessage(2021, LogLevel.Error, "The acknowledgement of job {JobId} could not be written even with its error text escaped; the job will be retried when its lease expires")]
    public static partial void AckUnwritable(ILogger logger, Exception exception, long jobId);

    [LoggerMessage(2022, LogLevel.Critical, "The acknowledgement writer stopped; finished jobs are no longer recorded and the health check reports unhealthy")]
    public static partial void AckWriterStopped(ILogger logger, Exception exception);

    [LoggerMessage(2023, LogLevel.Error, "The acknowledgement of job {JobId} came after the writer had stopped; the job will be retried when its lease expires")]
    public static partial void AckNotQueued(ILogger logger, long jobId);

    [LoggerMessage(2024, LogLevel.Debug, "Deleted {Count} run(s) of the history older than the estimator's window ({Window})")]
    public static partial void RunHistoryPruned(ILogger logger, int count, TimeSpan window);

    [LoggerMessage(2025, LogLevel.Information, "Gave back {Count} fetched job(s) of {Queue} that waited half their lease for a slot; another host can take them")]
    public static partial void BufferedJobsGivenBack(ILogger logger, int count, string queue);

    [LoggerMessage(2007, LogLevel.Warning, "{Count} acknowledgement(s) were abandoned at shutdown; their jobs will be retried when their leases expire")]
    public static partial void AcksAbandoned(ILogger logger, int count);

    [LoggerMessage(2008, LogLevel.Warning, "Heartbeat failed; retrying in {Delay}")]
    public static partial void HeartbeatFailed(ILogger logger, Exception exception, TimeSpan delay);

    [LoggerMessage(2009, LogLevel.Warning, "Lease of job {JobId} was lost (expired and rescued); its handler is cancelled")]
    public static partial void LeaseLost(ILogger logger, long jobId);

    [LoggerMessage(2031, LogLevel.Error, "Job {JobId} ({Kind}) ignored its cancelled token {Grace} past its timeout of {Timeout}; its lease is no longer extended, so it will be rescued and may run again while this handler's code still runs (its slot stays taken until it returns)")]
    public static partial void TimeoutIgnored(ILogger logger, long jobId, string kind, TimeSpan timeout, TimeSpan grace);

    [LoggerMessage(2010, LogLevel.Warning, "Rescued {Count} job(s) whose leases had expired")]
    public static partial void Rescued(ILogger logger, int count);

    [LoggerMessage(2032, LogLevel.Information, "Expired {Count} job(s) not started by their latest start time")]
    public static partial void Expired(ILogger logger, int count);

    [LoggerMessage(2011, LogLevel.Warning, "Rescuing expired leases failed")]
    public static partial void RescueFailed(ILogger logger, Exception exception);

    [LoggerMessage(2030, LogLevel.Information, "Stopping: waiting up to {Timeout} for {Count} running job(s) to finish (ShutdownTimeout); then they are cancelled and released")]
    public static partial void ShutdownWaiting(ILogger logger, TimeSpan timeout, int count);

    [LoggerMessage(2012, LogLevel.Information, "Shutdown timeout reached with {Count} job(s) running; cancelling them")]
    public static partial void ShutdownCancelling(ILogger logger, int count);

    [LoggerMessage(2015, LogLevel.Debug, "Deleted {Count} job(s) finished more than {Retention} ago")]
    public static partial void Purged(ILogger logger, int count, TimeSpan retention);

    [LoggerMessage(2016, LogLevel.Warning, "Deleting finished jobs failed")]
    public static partial void PurgeFailed(ILogger logger, Exception exception);

    [LoggerMessage(2014, LogLevel.Warning, "Reading queue statistics failed")]
    public static partial void StatsFailed(ILogger logger, Exception exception);

    [LoggerMessage(2013, LogLevel.Warning, "Initialising the job store failed: {Reason}; retrying in {Delay}")]
    public static partial void InitializeFailed(ILogger logger, string reason, TimeSpan delay);

    [LoggerMessage(2027, LogLevel.Debug, "Initialising the job store failed")]
    public static partial void InitializeFailedDetail(ILogger logger, Exception exception);

    [LoggerMessage(2028, LogLevel.Critical, "The job store refuses this host: {Reason}. No job runs until this is fixed; the host keeps trying every 30 s")]
    public static partial void StoreRefused(ILogger logger, string reason);

    [LoggerMessage(2029, LogLevel.Information, "The job store accepts this host now")]
    public static partial void StoreAccepted(ILogger logger);

    [LoggerMessage(2033, LogLevel.Warning, "Reporting this host to the job store failed; it runs jobs all the same, but may be missing from the live hosts")]
    public static partial void HostReportFailed(ILogger logger, Exception exception);

    [LoggerMessage(2034, LogLevel.Warning, "Queue '{Queue}' holds {Count} job(s) larger than any of the {Hosts} live host(s) serving it can hold; they wait until a larger host serves the queue (see 'scheduling hosts')")]
    public static partial void Oversized(ILogger logger, string queue, long count, int hosts);
}
