using System.Diagnostics.Metrics;

namespace Scheduling;

/// <summary>
/// The library's one <see cref="Meter"/>, named "Scheduling". Tags are low-cardinality only
/// (source, reason, definition never: definitions can be many). See docs/ara.md for the instruments.
/// </summary>
internal static class SchedulingMetrics
{
    public const string MeterName = "Scheduling";

    public static readonly Meter Meter = new(MeterName, typeof(SchedulingMetrics).Assembly.GetName().Version?.ToString());

    public static readonly Counter<long> AraEstimates = Meter.CreateCounter<long>("scheduling.ara.estimates", "{job}", "ARA allocations, by source (command_history, normalized_command_history, definition_history, baseline).");
    public static readonly Counter<long> AraNoHistory = Meter.CreateCounter<long>("scheduling.ara.no_history", "{job}", "ARA-eligible jobs that had no usable history and got their baseline.");
    public static readonly Counter<long> AraSkipped = Meter.CreateCounter<long>("scheduling.ara.skipped", "{job}", "Jobs that skipped ARA, by reason (disabled, gpu, null_command_hash).");
    public static readonly Counter<long> AraNullHash = Meter.CreateCounter<long>("scheduling.ara.null_command_hash", "{job}", "Jobs with a definition but no command (a malformed job).");
    public static readonly Counter<long> AraGpuSkipped = Meter.CreateCounter<long>("scheduling.ara.gpu_skipped", "{job}", "GPU jobs, which skip ARA.");
    public static readonly Counter<long> AraCeilingHits = Meter.CreateCounter<long>("scheduling.ara.ceiling_hits", "{job}", "Estimates cut to the memory ceiling.");
    public static readonly Histogram<double> AraAdjustmentRatio = Meter.CreateHistogram<double>("scheduling.ara.adjustment_ratio", "1", "Allocated memory over the definition's baseline.");
}
