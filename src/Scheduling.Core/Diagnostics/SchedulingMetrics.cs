using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Scheduling;

/// <summary>
/// The library's one <see cref="Meter"/> and one <see cref="ActivitySource"/>, both named
/// "Scheduling". Tags are low-cardinality only (queue, kind, outcome, source, reason; never job ids
/// or definitions). docs/observability.md lists every instrument.
/// </summary>
internal static class SchedulingMetrics
{
    public const string MeterName = "Scheduling";

    // Declared first: the instruments below are created from it during static initialisation.
    public static readonly Meter Meter = new(MeterName, typeof(SchedulingMetrics).Assembly.GetName().Version?.ToString());

    public static readonly ActivitySource ActivitySource = new("Scheduling", typeof(SchedulingMetrics).Assembly.GetName().Version?.ToString());

    public static readonly Counter<long> Enqueued = Meter.CreateCounter<long>("scheduling.jobs.enqueued", "{job}", "Jobs written to a queue (not counting unique-key hits).");
    public static readonly Counter<long> Acquired = Meter.CreateCounter<long>("scheduling.jobs.acquired", "{job}", "Jobs leased by this host's workers.");
    public static readonly Counter<long> Succeeded = Meter.CreateCounter<long>("scheduling.jobs.succeeded", "{job}", "Attempts that succeeded.");
    public static readonly Counter<long> Failed = Meter.CreateCounter<long>("scheduling.jobs.failed", "{job}", "Attempts that failed (retried or dead).");
    public static readonly Counter<long> Retried = Meter.CreateCounter<long>("scheduling.jobs.retried", "{job}", "Failed attempts that will be retried.");
    public static readonly Counter<long> Dead = Meter.CreateCounter<long>("scheduling.jobs.dead", "{job}", "Jobs that failed for the last time.");
    public static readonly Counter<long> Cancelled = Meter.CreateCounter<long>("scheduling.jobs.cancelled", "{job}", "Running jobs stopped on request.");
    public static readonly Counter<long> Expired = Meter.CreateCounter<long>("scheduling.jobs.expired", "{job}", "Jobs that ended expired, not started by their latest start time, found by this host's rescuer.");

    public static readonly Counter<long> Rescued = Meter.CreateCounter<long>("scheduling.jobs.rescued", "{job}", "Jobs whose lease expired and were returned by this host's rescuer.");
    public static readonly Histogram<double> QueueWait = Meter.CreateHistogram<double>("scheduling.job.queue_wait", "s", "From when a job was due to when its attempt started.");
    public static readonly Histogram<double> RunDuration = Meter.CreateHistogram<double>("scheduling.job.duration", "s", "How long an attempt ran.");


    public static readonly Counter<long> AraEstimates = Meter.CreateCounter<long>("scheduling.ara.estimates", "{job}", "ARA allocations, by source (command_history, normalized_command_history, definition_history, baseline).");
    public static readonly Counter<long> AraNoHistory = Meter.CreateCounter<long>("scheduling.ara.no_history", "{job}", "ARA-eligible jobs that had no usable history and got their baseline.");
    public static readonly Counter<long> AraSkipped = Meter.CreateCounter<long>("scheduling.ara.skipped", "{job}", "Jobs that skipped ARA, by reason (disabled, gpu, null_command_hash).");
    public static readonly Counter<long> AraNullHash = Meter.CreateCounter<long>("scheduling.ara.null_command_hash", "{job}", "Jobs with a definition but no command (a malformed job).");
    public static readonly Counter<long> AraGpuSkipped = Meter.CreateCounter<long>("scheduling.ara.gpu_skipped", "{job}", "GPU jobs, which skip ARA.");
    public static readonly Counter<long> AraCeilingHits = Meter.CreateCounter<long>("scheduling.ara.ceiling_hits", "{job}", "Estimates cut to the memory ceiling.");
    public static readonly Histogram<double> AraAdjustmentRatio = Meter.CreateHistogram<double>("scheduling.ara.adjustment_ratio", "1", "Allocated memory over the definition's baseline.");
}
