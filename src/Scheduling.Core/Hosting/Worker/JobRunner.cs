using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>
/// Runs one job's handler (the executor): the consumer span, the queue-wait and run-duration
/// measures, and the acknowledgement the outcome calls for. It decides nothing about the job's next
/// state; the store does that with <see cref="JobTransitions"/> when the acknowledgement is written.
/// </summary>
internal sealed class JobRunner(JobHandlerRegistry handlers, IServiceProvider services, JsonSerializerOptions json, RunningJobs running, string workerId, TimeProvider time, ILogger logger, JobFailureLog failures)
{
    /// <summary>Runs the handler and returns its acknowledgement, or null when there is none to write.</summary>
    public async Task<JobAck?> RunAsync(RunningJob holding, PrefetchSizing sizing)
    {
        var job = holding.Job;
        holding.MarkStarted();
        var usage = new ResourceUsage();
        var started = time.GetTimestamp();
        using var activity = JobTelemetry.StartProcess(job, holding.Received);
        SchedulingMetrics.QueueWait.Record(Math.Max(0, (time.GetUtcNow() - job.RunAt).TotalSeconds), new KeyValuePair<string, object?>("queue", job.Queue), new KeyValuePair<string, object?>("kind", job.Kind));
        JobAck? ack;
        try
        {
            if (!handlers.TryGet(job.Kind, out var registration))
            {
                Log.UnknownKind(logger, job.Kind, job.Id, job.Queue);
                var known = string.Join(", ", handlers.Kinds.Order(StringComparer.Ordinal));
                ack = JobAck.Failure(job.Lease, $"No handler is registered for job kind '{job.Kind}' on worker {workerId}. Registered kinds: {(known.Length == 0 ? "(none)" : known)}.");
            }
            else
            {
                await registration.Invoke(services, job, json, usage, holding.Token).ConfigureAwait(false);
                ack = JobAck.Success(job.Lease);
            }
        }
        catch (OperationCanceledException) when (holding.StopReason != StopReason.None)
        {
            ack = holding.StopReason switch
            {
                StopReason.CancellationRequested => new JobAck(job.Lease, JobAckKind.Cancelled),
                StopReason.Shutdown => new JobAck(job.Lease, JobAckKind.Released),
                _ => null, // lease lost: the job belongs to someone else now
            };
        }
        catch (PermanentJobFailureException ex)
        {
            failures.Failed(job, ex);
            ack = JobAck.Failure(job.Lease, ex.ToString(), retryable: false);
        }
        catch (Exception ex)
        {
            failures.Failed(job, ex);
            ack = JobAck.Failure(job.Lease, ex.ToString());
        }
        finally
        {
            running.Remove(holding);
            holding.Dispose();
        }

        var elapsed = time.GetElapsedTime(started);
        sizing.Observe(elapsed);
        JobOutcomes.Ran(job, ack, elapsed, activity);
        if (ack is not { } value || holding.Released) return null;
        if (job.Allocation is not null)
        {
            usage.ExitCode ??= value.Kind == JobAckKind.Succeeded ? 0 : 1;
            value = value with { Usage = usage, RunDuration = elapsed };
        }

        return value;
    }
}
