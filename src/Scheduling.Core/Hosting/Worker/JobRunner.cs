using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>
/// Runs one job's handler (the executor): the consumer span, the queue-wait and run-duration
/// measures, and the acknowledgement the outcome calls for. It decides nothing about the job's next
/// state; the store does that with <see cref="JobTransitions"/> when the acknowledgement is written.
/// </summary>
internal sealed class JobRunner(JobExecutor executor, SchedulingOptions options, RunningJobs running, string workerId, TimeProvider time, ILogger logger, JobFailureLog failures,
    InProcessUsage? observer = null)
{
    /// <summary>Runs the handler and returns its acknowledgement, or null when there is none to write.</summary>
    public async Task<JobAck?> RunAsync(RunningJob holding, PrefetchSizing sizing)
    {
        var job = holding.Job;
        holding.Output = executor.CreateOutput(job); // before it is marked started: the heartbeat reads it
        holding.MarkStarted();
        if (options.TimeoutOf(job) is { } timeout) holding.StartTimeout(timeout, time);
        var usage = new ResourceUsage();
        var started = time.GetTimestamp();
        using var observation = observer?.Begin(job);
        using var activity = JobTelemetry.StartProcess(job, holding.Received);
        SchedulingMetrics.QueueWait.Record(Math.Max(0, (time.GetUtcNow() - job.RunAt).TotalSeconds), new KeyValuePair<string, object?>("queue", job.Queue), new KeyValuePair<string, object?>("kind", job.Kind));
        JobAck? ack;
        try
        {
            var execution = await executor.RunAsync(job, usage, workerId, holding.Token, holding.Output).ConfigureAwait(false);
            if (execution.UnknownKind) Log.UnknownKind(logger, job.Kind, job.Id, job.Queue);
            if (execution.Exception is { } failure) failures.Failed(job, failure);
            // The last report, if no heartbeat carried it, goes with the acknowledgement.
            ack = holding.Output.Pending(holding.ProgressSent) is var (progress, _) ? execution.Ack with { Progress = progress } : execution.Ack;
        }
        catch (OperationCanceledException) when (holding.StopReason != StopReason.None)
        {
            ack = holding.StopReason switch
            {
                StopReason.CancellationRequested => new JobAck(job.Lease, JobAckKind.Cancelled),
                StopReason.Shutdown => new JobAck(job.Lease, JobAckKind.Released),
                StopReason.TimedOut => TimedOut(job, holding.Timeout!.Value),
                _ => null, // lease lost: the job belongs to someone else now
            };
            if (ack is { } stopped) ack = JobExecutor.WithUsage(job, stopped, usage, time.GetElapsedTime(started));
        }
        finally
        {
            // Fills in place what the handler left unreported: the acknowledgement carries this same usage.
            observation?.Complete(usage, time.GetElapsedTime(started));
            running.Remove(holding);
            holding.Dispose();
        }

        var elapsed = time.GetElapsedTime(started);
        sizing.Observe(elapsed);
        JobOutcomes.Ran(job, ack, elapsed, activity);
        if (ack is not { } value || holding.Released) return null;
        return value;
    }

    /// <summary>The failure of an attempt that ran past its timeout (retried per policy, like any failure).</summary>
    private JobAck TimedOut(AcquiredJob job, TimeSpan timeout)
    {
        var error = new TimeoutException($"The attempt timed out after {timeout.TotalSeconds:0.###} s: its handler was cancelled at the deadline.");
        failures.Failed(job, error);
        return JobAck.Failure(job.Lease, error.Message);
    }
}
