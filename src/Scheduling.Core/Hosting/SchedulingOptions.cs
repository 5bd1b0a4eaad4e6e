using Microsoft.Extensions.Options;

namespace Scheduling;

/// <summary>Settings of the worker host and the queue rules, validated at start-up.</summary>
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
    public List<QueueGroupOptions> QueueGroups { get; } = [];

    /// <summary>True (default) runs the worker host; false registers the queue only (enqueue-only hosts).</summary>
    public bool RunWorkers { get; set; } = true;

    /// <summary>How long a lease lasts without a heartbeat (default 30 s); a crashed worker's jobs return after this.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often running jobs' leases are extended (default 10 s; must be under a third of the lease).</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often expired leases are rescued (default 5 s).</summary>
    public TimeSpan RescueInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long an idle fetch loop waits for a wake-up before it polls anyway (default 1 s).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long acknowledgements are buffered to be written together (default 5 ms; zero writes at once).</summary>
    public TimeSpan AckFlushInterval { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>The most acknowledgements written in one statement (default 500).</summary>
    public int AckBatchSize { get; set; } = 500;

    /// <summary>Finished jobs (succeeded, cancelled, dead) are deleted this long after they finished (default 7 days; null keeps them).</summary>
    public TimeSpan? FinishedJobRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often the host prunes finished jobs, in batches of <see cref="RetentionBatchSize"/> (default 5 min).</summary>
    public TimeSpan RetentionInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The most finished jobs deleted per statement (default 5,000), so pruning never holds long locks.</summary>
    public int RetentionBatchSize { get; set; } = 5000;

    /// <summary>How often queue depths are read for the gauges and the health check (default 15 s).</summary>
    public TimeSpan StatsInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>The health check reports degraded when a due job has waited longer than this (default 5 min).</summary>
    public TimeSpan HealthMaxDueAge { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long shutdown waits for running jobs before cancelling and releasing them (default 20 s).</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Validation and retry rules applied by the queue.</summary>
    public JobQueueOptions Queue { get; set; } = new();

    /// <summary>Adaptive resource allocation: bounds, fallback key, estimator parameters.</summary>
    public AraOptions Ara { get; set; } = new();

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
    /// <summary>The queues and their weights (1-1,000): weights 3 and 1 give the first three of every four jobs when both have work.</summary>
    public Dictionary<string, int> Weights { get; } = new(StringComparer.Ordinal);
}

/// <summary>How a host works one queue (or one group of queues).</summary>
public class QueueWorkerOptions
{
    /// <summary>The concurrency used when none is set.</summary>
    public const int DefaultConcurrency = 10;

    /// <summary>How many jobs of this queue run at once on this host (1-10,000; default 10).</summary>
    public int Concurrency { get; set; } = DefaultConcurrency;

    /// <summary>The most jobs fetched in one statement (1-10,000; default: as many as the prefetch leaves room for).</summary>
    public int? FetchBatchSize { get; set; }

    /// <summary>
    /// The most jobs this host holds for the queue at once, running or fetched and waiting locally for
    /// a slot. Fetching ahead turns one round trip per free slot into one per batch. Default (with
    /// <see cref="FetchBatchSize"/> unset too): about 100 ms of work per slot, from recent run
    /// durations: 4 x <see cref="Concurrency"/> (Celery's prefetch multiplier) for jobs of 25 ms and
    /// longer, up to 250 x for very short jobs. Set it to the concurrency when jobs are long and many
    /// hosts share the queue, so no host holds jobs another could start.
    /// </summary>
    public int? Prefetch { get; set; }
}

/// <summary>Checks <see cref="SchedulingOptions"/>; every message names the setting and the allowed range.</summary>
internal sealed class SchedulingOptionsValidator : IValidateOptions<SchedulingOptions>
{
    public ValidateOptionsResult Validate(string? name, SchedulingOptions options)
    {
        var errors = new List<string>();
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
            ValidateWorker(q, $"Scheduling:Queues:{queue}", errors);
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

            ValidateWorker(group, prefix, errors);
        }

        if (options.LeaseDuration < TimeSpan.FromSeconds(1) || options.LeaseDuration > TimeSpan.FromDays(1))
            errors.Add($"Scheduling:LeaseDuration must be between 1 second and 1 day (was {options.LeaseDuration}).");
        if (options.HeartbeatInterval <= TimeSpan.Zero || options.HeartbeatInterval * 3 > options.LeaseDuration)
            errors.Add($"Scheduling:HeartbeatInterval must be positive and at most a third of LeaseDuration ({options.LeaseDuration}) so one lost heartbeat does not lose the lease (was {options.HeartbeatInterval}).");
        if (options.RescueInterval <= TimeSpan.Zero) errors.Add($"Scheduling:RescueInterval must be positive (was {options.RescueInterval}).");
        if (options.PollInterval < TimeSpan.FromMilliseconds(10)) errors.Add($"Scheduling:PollInterval must be at least 10 ms (was {options.PollInterval}).");
        if (options.AckFlushInterval < TimeSpan.Zero || options.AckFlushInterval > TimeSpan.FromSeconds(1))
            errors.Add($"Scheduling:AckFlushInterval must be between 0 and 1 second (was {options.AckFlushInterval}).");
        if (options.AckBatchSize is < 1 or > 10_000) errors.Add($"Scheduling:AckBatchSize must be between 1 and 10000 (was {options.AckBatchSize}).");
        if (options.FinishedJobRetention is { } retention && retention < TimeSpan.Zero) errors.Add($"Scheduling:FinishedJobRetention must not be negative (was {retention}).");
        if (options.RetentionInterval <= TimeSpan.Zero) errors.Add($"Scheduling:RetentionInterval must be positive (was {options.RetentionInterval}).");
        if (options.RetentionBatchSize is < 1 or > 1_000_000) errors.Add($"Scheduling:RetentionBatchSize must be between 1 and 1000000 (was {options.RetentionBatchSize}).");
        if (options.StatsInterval < TimeSpan.FromMilliseconds(100)) errors.Add($"Scheduling:StatsInterval must be at least 100 ms (was {options.StatsInterval}).");
        if (options.HealthMaxDueAge <= TimeSpan.Zero) errors.Add($"Scheduling:HealthMaxDueAge must be positive (was {options.HealthMaxDueAge}).");
        if (options.ShutdownTimeout < TimeSpan.Zero) errors.Add($"Scheduling:ShutdownTimeout must not be negative (was {options.ShutdownTimeout}).");
        if (options.Queue is null) errors.Add("Scheduling:Queue is required.");
        else options.Queue.Validate(errors, "Scheduling:Queue:");
        if (options.Ara is null) errors.Add("Scheduling:Ara is required.");
        else options.Ara.Validate(errors, "Scheduling:Ara:");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidateQueue(string queue, string setting, Dictionary<string, string> worked, List<string> errors)
    {
        try { JobValidation.ValidateQueueName(queue, "queue"); }
        catch (ArgumentException ex) { errors.Add($"{setting}: {ex.Message}"); }
        if (!worked.TryAdd(queue, setting)) errors.Add($"{setting}: the queue '{queue}' is already worked by {worked[queue]}; a queue is worked by one set of slots.");
    }

    private static void ValidateWorker(QueueWorkerOptions q, string prefix, List<string> errors)
    {
        if (q.Concurrency is < 1 or > 10_000) errors.Add($"{prefix}:Concurrency must be between 1 and 10000 (was {q.Concurrency}).");
        if (q.FetchBatchSize is < 1 or > 10_000) errors.Add($"{prefix}:FetchBatchSize must be between 1 and 10000 (was {q.FetchBatchSize}).");
        if (q.Prefetch is { } prefetch && (prefetch < q.Concurrency || prefetch > 100_000)) errors.Add($"{prefix}:Prefetch must be between the concurrency ({q.Concurrency}) and 100000 (was {prefetch}).");
    }
}
