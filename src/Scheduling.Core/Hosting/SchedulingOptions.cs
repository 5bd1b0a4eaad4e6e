using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Scheduling;

/// <summary>
/// Settings of the worker host and the queue rules, validated at start-up: each setting's allowed
/// range is its <c>[Range]</c> attribute (the one place it is stated), and the rules between settings
/// are checked with it.
/// </summary>
public sealed class SchedulingOptions
{
    /// <summary>The configuration section these options are bound from.</summary>
    public const string Section = "Scheduling";

    /// <summary>This host's worker id; null derives one from the machine name, process id and a random suffix.</summary>
    public string? WorkerId { get; set; }

    /// <summary>The queues this host works, by name, with their concurrency. Empty means the "default" queue.</summary>
    public Dictionary<string, QueueWorkerOptions> Queues { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Groups of queues this host works from one shared pool of slots: each fetch is split across
    /// the group's queues by weight, and a queue's unused share goes to the others, so a deep queue
    /// cannot starve a shallow one. A queue belongs to at most one group and is not also in <see cref="Queues"/>.
    /// </summary>
    [ValidateEnumeratedItems]
    public List<QueueGroupOptions> QueueGroups { get; } = [];

    /// <summary>True (default) runs the worker host; false registers the queue only (enqueue-only hosts).</summary>
    public bool RunWorkers { get; set; } = true;

    /// <summary>How long a lease lasts without a heartbeat (default 30 s); a crashed worker's jobs return after this.</summary>
    [TimeSpanRange("00:00:01", "1.00:00:00")]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often running jobs' leases are extended (default 10 s; at most a third of <see cref="LeaseDuration"/>, so one lost heartbeat does not lose the lease).</summary>
    [TimeSpanRange("00:00:00.010", "08:00:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often expired leases are rescued (default 5 s).</summary>
    [TimeSpanRange("00:00:00.010", "1.00:00:00")]
    public TimeSpan RescueInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long an idle fetch loop waits for a wake-up before it polls anyway (default 1 s).</summary>
    [TimeSpanRange("00:00:00.010", "01:00:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long acknowledgements are buffered to be written together (default 5 ms; zero writes at once).</summary>
    [TimeSpanRange("00:00:00", "00:00:01")]
    public TimeSpan AckFlushInterval { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>The most acknowledgements written in one statement (default 500).</summary>
    [Range(1, 10_000)]
    public int AckBatchSize { get; set; } = 500;

    /// <summary>Finished jobs (succeeded, cancelled, dead) are deleted this long after they finished (default 7 days; null keeps them).</summary>
    [TimeSpanRange("00:00:00", "36500.00:00:00")]
    public TimeSpan? FinishedJobRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often the host prunes finished jobs, in batches of <see cref="RetentionBatchSize"/> (default 5 min).</summary>
    [TimeSpanRange("00:00:00.010", "1.00:00:00")]
    public TimeSpan RetentionInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The most finished jobs deleted per statement (default 5,000), so pruning never holds long locks.</summary>
    [Range(1, 1_000_000)]
    public int RetentionBatchSize { get; set; } = 5000;

    /// <summary>How often queue depths are read for the gauges and the health check (default 15 s).</summary>
    [TimeSpanRange("00:00:00.100", "1.00:00:00")]
    public TimeSpan StatsInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>The health check reports degraded when a due job has waited longer than this (default 5 min).</summary>
    [TimeSpanRange("00:00:00.001", "365.00:00:00")]
    public TimeSpan HealthMaxDueAge { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long one attempt may run when neither the job (<see cref="JobRequest.Timeout"/>) nor its kind
    /// (<see cref="JobTimeouts"/>) says; null (default) sets no limit.
    /// </summary>
    [TimeSpanRange("00:00:00.001", "7.00:00:00")]
    public TimeSpan? DefaultJobTimeout { get; set; }

    /// <summary>Attempt timeouts by job kind, used when the job carries none (<see cref="JobRequest.Timeout"/> wins).</summary>
    public Dictionary<string, TimeSpan> JobTimeouts { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// How long after its timeout a handler that ignores its cancelled token still has its lease
    /// extended (default 30 s). After that the lease keeper lets the lease run out, so the job is
    /// rescued and may run again elsewhere; this host's slot stays taken until the handler's code
    /// actually returns, since .NET cannot stop code that does not observe its token.
    /// </summary>
    [TimeSpanRange("00:00:00", "1.00:00:00")]
    public TimeSpan TimeoutGrace { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The timeout of one attempt of <paramref name="job"/>: its own, else its kind's, else <see cref="DefaultJobTimeout"/>.</summary>
    internal TimeSpan? TimeoutOf(AcquiredJob job) => job.Timeout ?? (JobTimeouts.TryGetValue(job.Kind, out var byKind) ? byKind : DefaultJobTimeout);

    /// <summary>How long shutdown waits for running jobs before cancelling and releasing them (default 20 s).</summary>
    [TimeSpanRange("00:00:00", "1.00:00:00")]
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Validation and retry rules applied by the queue.</summary>
    [Required, ValidateObjectMembers]
    public JobQueueOptions Queue { get; set; } = new();

    /// <summary>Adaptive resource allocation: bounds, fallback key, estimator parameters.</summary>
    [Required, ValidateObjectMembers]
    public AraOptions Ara { get; set; } = new();

    /// <summary>
    /// This host's resources, for capacity-aware claims: jobs whose allocation could never fit are left
    /// to larger hosts, and a claim takes only the run of due jobs, in queue order, that fits what the
    /// jobs it holds leave free. Null (default) declares none: every due job may be claimed, as before.
    /// </summary>
    public ResourceCapacity? Capacity { get; set; }

    /// <summary>
    /// Fill the amounts <see cref="Capacity"/> leaves unset from the container's limits (cgroup v2
    /// <c>memory.max</c> and <c>cpu.max</c>; no limit there leaves the amount unlimited). Default false.
    /// </summary>
    public bool CapacityFromContainer { get; set; }

    /// <summary>
    /// When a sized job's handler reports no usage (<see cref="JobContext{TPayload}.Usage"/>), record what
    /// the host observed of its own process while the job ran, when that measure is the job's: the job ran
    /// alone on this host. Peak memory is the process's peak resident set during the run, its runtime included (Linux:
    /// <c>/proc/self/status</c> VmHWM, reset through <c>/proc/self/clear_refs</c> as the job starts); CPU is the process's average
    /// over the run. Default true; elsewhere than Linux, or while several jobs run, nothing is recorded.
    /// </summary>
    public bool ObserveInProcessUsage { get; set; } = true;

    /// <summary>Adds or replaces a queue for this host to work.</summary>
    public SchedulingOptions AddQueue(string name, int concurrency = QueueWorkerOptions.DefaultConcurrency, int? fetchBatchSize = null)
    {
        Queues[name] = new QueueWorkerOptions { Concurrency = concurrency, FetchBatchSize = fetchBatchSize };
        return this;
    }

    /// <summary>Adds a group of queues worked together with <paramref name="concurrency"/> slots, each fetch split by the queues' weights.</summary>
    public SchedulingOptions AddQueueGroup(int concurrency, params QueueShare[] queues)
    {
        ArgumentNullException.ThrowIfNull(queues);
        var group = new QueueGroupOptions { Concurrency = concurrency };
        foreach (var share in queues) group.Weights[share.Queue] = share.Weight;
        QueueGroups.Add(group);
        return this;
    }

    /// <summary>What each set of fetch loops works: one queue, or a weighted group sharing one pool of slots.</summary>
    internal IReadOnlyList<(string Name, QueueShare[] Shares, QueueWorkerOptions Options)> EffectiveWork
    {
        get
        {
            var work = Queues.Select(q => (q.Key, new[] { new QueueShare(q.Key, 1) }, q.Value))
                .Concat(QueueGroups.Select(g => (string.Join("+", g.Weights.Keys), g.Weights.Select(w => new QueueShare(w.Key, w.Value)).ToArray(), (QueueWorkerOptions)g)))
                .ToList();
            return work.Count > 0 ? work : [(JobRequest.DefaultQueue, [new QueueShare(JobRequest.DefaultQueue, 1)], new QueueWorkerOptions())];
        }
    }
}

/// <summary>Queues a host works together from one pool of slots, with their weights.</summary>
public sealed class QueueGroupOptions : QueueWorkerOptions
{
    /// <summary>The queues and their weights (1-1,000, checked with <c>FairShare.MaxWeight</c>): weights 3 and 1 give the first three of every four jobs when both have work.</summary>
    public Dictionary<string, int> Weights { get; } = new(StringComparer.Ordinal);
}

/// <summary>How a host works one queue (or one group of queues).</summary>
public class QueueWorkerOptions
{
    /// <summary>The concurrency used when none is set.</summary>
    public const int DefaultConcurrency = 10;

    /// <summary>How many jobs of this queue run at once on this host (default 10).</summary>
    [Range(1, 10_000)]
    public int Concurrency { get; set; } = DefaultConcurrency;

    /// <summary>The most jobs fetched in one statement (default: as many as the prefetch leaves room for).</summary>
    [Range(1, 10_000)]
    public int? FetchBatchSize { get; set; }

    /// <summary>
    /// The most jobs this host holds for the queue at once, running or fetched and waiting locally for
    /// a slot; at least <see cref="Concurrency"/>. Fetching ahead turns one round trip per free slot into one per batch. Default (with
    /// <see cref="FetchBatchSize"/> unset too): about 100 ms of work per slot, from recent run
    /// durations: 4 x <see cref="Concurrency"/> (Celery's prefetch multiplier) for jobs of 25 ms and
    /// longer, up to 250 x for very short jobs. Set it to the concurrency when jobs are long and many
    /// hosts share the queue, so no host holds jobs another could start.
    /// </summary>
    [Range(1, 100_000)]
    public int? Prefetch { get; set; }
}

/// <summary>The ranges of <see cref="SchedulingOptions"/> and its nested settings, generated from their attributes.</summary>
[OptionsValidator]
internal sealed partial class SchedulingOptionsRanges : IValidateOptions<SchedulingOptions>;

/// <summary>The ranges of one queue's (or group's) worker settings, generated from their attributes.</summary>
[OptionsValidator]
internal sealed partial class QueueWorkerOptionsRanges : IValidateOptions<QueueWorkerOptions>;

/// <summary>
/// Checks <see cref="SchedulingOptions"/>: the generated range checks, then the rules between
/// settings and the queue names; every message names the setting by its configuration key.
/// </summary>
internal sealed class SchedulingOptionsValidator : IValidateOptions<SchedulingOptions>
{
    private static readonly SchedulingOptionsRanges Ranges = new();
    private static readonly QueueWorkerOptionsRanges WorkerRanges = new();

    public ValidateOptionsResult Validate(string? name, SchedulingOptions options)
    {
        var errors = new List<string>();
        GeneratedValidation.AddFailures(Ranges.Validate(SchedulingOptions.Section, options), SchedulingOptions.Section, errors);
        if (options.WorkerId is not null)
        {
            try { JobValidation.ValidateWorkerId(options.WorkerId, nameof(options.WorkerId)); }
            catch (ArgumentException ex) { errors.Add($"Scheduling:{nameof(options.WorkerId)}: {ex.Message}"); }
        }

        var worked = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (queue, q) in options.Queues)
        {
            ValidateQueue(queue, $"Scheduling:Queues:{queue}", worked, errors);
            if (q is null) { errors.Add($"Scheduling:Queues:{queue} has no settings."); continue; }
            var setting = $"Scheduling:Queues:{queue}";
            GeneratedValidation.AddFailures(WorkerRanges.Validate(setting, q), setting, errors);
            ValidatePrefetch(q, setting, errors);
        }

        for (var i = 0; i < options.QueueGroups.Count; i++)
        {
            var group = options.QueueGroups[i];
            var prefix = $"Scheduling:QueueGroups:{i}";
            if (group is null) { errors.Add($"{prefix} has no settings."); continue; }
            if (group.Weights.Count == 0) errors.Add($"{prefix}:Weights must name at least one queue.");
            if (group.Weights.Count > FairShare.MaxQueues) errors.Add($"{prefix}:Weights names {group.Weights.Count} queues; the limit is {FairShare.MaxQueues}.");
            foreach (var (queue, weight) in group.Weights)
            {
                ValidateQueue(queue, $"{prefix}:Weights:{queue}", worked, errors);
                if (weight is < 1 or > FairShare.MaxWeight) errors.Add($"{prefix}:Weights:{queue} must be between 1 and {FairShare.MaxWeight} (was {weight}).");
            }

            ValidatePrefetch(group, prefix, errors);
        }

        if (options.Capacity is { } capacity)
        {
            try { capacity.Validate(nameof(options.Capacity)); }
            catch (ArgumentOutOfRangeException ex) { errors.Add($"Scheduling:{ex.ParamName} cannot be negative (was {ex.ActualValue})."); }
        }

        foreach (var (kind, timeout) in options.JobTimeouts)
        {
            if (timeout < TimeSpan.FromMilliseconds(1) || timeout > JobValidation.MaxTimeout)
                errors.Add($"Scheduling:JobTimeouts:{kind} must be between 1 ms and {JobValidation.MaxTimeout.TotalDays:0} days (was {timeout}).");
        }

        if (options.HeartbeatInterval * 3 > options.LeaseDuration)
            errors.Add($"Scheduling:HeartbeatInterval must be at most a third of LeaseDuration ({options.LeaseDuration}) so one lost heartbeat does not lose the lease (was {options.HeartbeatInterval}).");
        options.Queue?.ValidateRules(errors, "Scheduling:Queue:");
        options.Ara?.ValidateRules(errors, "Scheduling:Ara:");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidateQueue(string queue, string setting, Dictionary<string, string> worked, List<string> errors)
    {
        try { JobValidation.ValidateQueueName(queue, "queue"); }
        catch (ArgumentException ex) { errors.Add($"{setting}: {ex.Message}"); }
        if (!worked.TryAdd(queue, setting)) errors.Add($"{setting}: the queue '{queue}' is already worked by {worked[queue]}; a queue is worked by one set of slots.");
    }

    private static void ValidatePrefetch(QueueWorkerOptions q, string prefix, List<string> errors)
    {
        if (q.Prefetch is { } prefetch && prefetch < q.Concurrency) errors.Add($"{prefix}:Prefetch must be at least the concurrency ({q.Concurrency}) (was {prefetch}).");
    }
}
