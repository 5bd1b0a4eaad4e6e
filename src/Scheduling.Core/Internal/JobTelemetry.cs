using System.Diagnostics;

namespace Scheduling.Internal;

/// <summary>
/// Trace context across the queue (OpenTelemetry messaging conventions): enqueue is a producer
/// "send" span whose W3C context is stored on the job; each attempt is a consumer "process" span
/// whose parent is that stored context, linked to the batch "receive" span that acquired it. The
/// trace therefore continues across processes and retries.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class JobTelemetry
{
    /// <summary>The messaging system tag value.</summary>
    public const string System = "scheduling";

    /// <summary>Starts the send span of an enqueue (null when nobody listens) and stamps the trace context on the jobs.</summary>
    public static Activity? StartSend(List<PreparedJob> jobs)
    {
        var queue = jobs.Count > 0 && jobs.TrueForAll(j => j.Queue == jobs[0].Queue) ? jobs[0].Queue : null;
        var activity = SchedulingMetrics.ActivitySource.StartActivity(queue is null ? "send" : $"send {queue}", ActivityKind.Producer);
        if (activity is not null)
        {
            activity.SetTag("messaging.system", System);
            activity.SetTag("messaging.operation.type", "send");
            activity.SetTag("messaging.operation.name", "send");
            if (queue is not null) activity.SetTag("messaging.destination.name", queue);
            if (jobs.Count > 1) activity.SetTag("messaging.batch.message_count", jobs.Count);
        }

        // Without a listener of ours, an ambient trace (e.g. the incoming HTTP request) still travels with the job.
        var context = activity ?? Activity.Current;
        if (context is { IdFormat: ActivityIdFormat.W3C })
        {
            for (var i = 0; i < jobs.Count; i++) jobs[i] = jobs[i] with { TraceParent = context.Id, TraceState = JobValidation.CapTraceState(context.TraceStateString) };
        }

        return activity;
    }

    /// <summary>Records what an enqueue wrote; sets the message id on single-job sends.</summary>
    public static void Sent(Activity? activity, List<PreparedJob> jobs, IReadOnlyList<EnqueueResult> results)
    {
        for (var i = 0; i < results.Count; i++)
        {
            if (results[i].Created)
                SchedulingMetrics.Enqueued.Add(1, new KeyValuePair<string, object?>("queue", jobs[i].Queue), new KeyValuePair<string, object?>("kind", jobs[i].Kind));
        }

        if (activity is not null && results.Count == 1) activity.SetTag("messaging.message.id", results[0].JobId.ToString(global::System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>A receive span for a batch just acquired, back-dated to when the acquisition started.</summary>
    public static Activity? Received(string queue, int count, DateTimeOffset startedAt)
    {
        if (count == 0 || !SchedulingMetrics.ActivitySource.HasListeners()) return null;
        var activity = SchedulingMetrics.ActivitySource.StartActivity($"receive {queue}", ActivityKind.Client, default(ActivityContext), startTime: startedAt);
        activity?.SetTag("messaging.system", System);
        activity?.SetTag("messaging.operation.type", "receive");
        activity?.SetTag("messaging.destination.name", queue);
        activity?.SetTag("messaging.batch.message_count", count);
        activity?.Stop();
        return activity;
    }

    /// <summary>The process span of one attempt: child of the enqueue's context, linked to the receive span.</summary>
    public static Activity? StartProcess(AcquiredJob job, Activity? received)
    {
        if (!SchedulingMetrics.ActivitySource.HasListeners()) return null;
        ActivityContext.TryParse(job.TraceParent, job.TraceState, isRemote: true, out var parent);
        var links = received is null ? null : new[] { new ActivityLink(received.Context) };
        var activity = SchedulingMetrics.ActivitySource.StartActivity($"process {job.Queue}", ActivityKind.Consumer, parent, links: links);
        if (activity is not null)
        {
            activity.SetTag("messaging.system", System);
            activity.SetTag("messaging.operation.type", "process");
            activity.SetTag("messaging.operation.name", "process");
            activity.SetTag("messaging.destination.name", job.Queue);
            activity.SetTag("messaging.message.id", job.Id.ToString(global::System.Globalization.CultureInfo.InvariantCulture));
            activity.SetTag("scheduling.job.kind", job.Kind);
            activity.SetTag("scheduling.job.attempt", job.Attempt);
        }

        return activity;
    }
}
