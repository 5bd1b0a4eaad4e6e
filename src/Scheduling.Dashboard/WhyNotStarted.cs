using System.Globalization;

namespace Scheduling.Dashboard;

/// <summary>Why a job has not started, in words, from the job, its queue's counts and the live hosts.</summary>
internal static class WhyNotStarted
{
    /// <summary>How far the jobs ahead of a due job are counted.</summary>
    public const int AheadCap = 1_000;

    public static IReadOnlyList<string> Explain(JobInfo job, QueueStats? queue, IReadOnlyList<WorkerHostInfo> hosts, DateTimeOffset now, long? ahead = null)
    {
        var reasons = new List<string>();
        switch (job.State)
        {
            case JobState.Running:
                return [$"It is running{(job.LockedBy is { } by ? $" on {by}" : "")} since {Format(job.AttemptedAt)}."];
            case JobState.Succeeded or JobState.Dead or JobState.Cancelled or JobState.Expired:
                return [$"It has finished ({Name(job.State)}) at {Format(job.FinalizedAt)}."];
            case JobState.Waiting:
                var unfinished = job.Parents.Where(p => !p.State.IsTerminal()).ToArray();
                reasons.Add(unfinished.Length == 0
                    ? "It is waiting for its parents to be settled."
                    : $"It is waiting on {(unfinished.Length == 1 ? "parent" : "parents")} {string.Join(", ", unfinished.Select(p => $"{p.JobId} ({Name(p.State)})"))}.");
                break;
            case JobState.Scheduled:
                reasons.Add($"It is not due until {Format(job.RunAt)} (in {Span(job.RunAt - now)}).");
                break;
        }

        if (job.LatestStartAt is { } latest && latest < now)
            reasons.Add($"It is past its latest start ({Format(latest)}): it will never start, and expires at the next rescue pass.");
        if (queue is { Paused: true }) reasons.Add($"Queue '{job.Queue}' is paused.");
        if (queue is { Hosts: 0 }) reasons.Add($"No live worker host serves queue '{job.Queue}'.");
        else if (WorkerHostInfo.FitsNone(job.Allocation, job.Queue, hosts))
        {
            var largest = hosts.Where(h => h.Serves(job.Queue)).Max(h => h.Capacity?.MemoryMb ?? int.MaxValue);
            reasons.Add($"It needs {Need(job.Allocation!)}, more than any live host serving '{job.Queue}' can hold (the largest has {largest:N0} MB).");
        }

        if (queue?.Limits is { IsLimited: true } limits)
        {
            if (limits.Rate is { } rate) reasons.Add($"Queue '{job.Queue}' starts at most {rate.Count} job(s) per {Span(rate.Period)}; it may be waiting for its allowance.");
            if (job.PartitionKey is { } key && limits.ConcurrencyPerKey is { } cap) reasons.Add($"At most {cap} job(s) of key '{key}' run at once; that key may be at its cap.");
            if (job.PartitionKey is { } rateKey && limits.RatePerKey is { } perKey) reasons.Add($"Key '{rateKey}' starts at most {perKey.Count} job(s) per {Span(perKey.Period)}.");
        }

        if (reasons.Count == 0 && job.State == JobState.Available)
        {
            reasons.Add(ahead switch
            {
                > 0 and var n => $"It has been due since {Format(job.RunAt)} and waits for a free worker slot behind {(n >= AheadCap ? $"at least {n:N0}" : $"{n:N0}")} due job(s) of '{job.Queue}' that go first (a higher priority than its {job.EffectivePriority}, or due earlier).",
                0 => $"It has been due since {Format(job.RunAt)} and is next in '{job.Queue}': a worker takes it at its next fetch.",
                _ when queue is { Available: > 1 } q => $"It has been due since {Format(job.RunAt)} and waits for a free worker slot: {q.Available - 1:N0} other due job(s) in '{job.Queue}', taken by priority {job.EffectivePriority} then due time.",
                _ => $"It has been due since {Format(job.RunAt)}; a worker should take it at its next fetch.",
            });
        }

        return reasons;
    }

    private static string Need(ResourceAllocation a) =>
        string.Join(", ", new[] { $"{a.MemoryMb:N0} MB", a.CpuMillicores > 0 ? $"{a.CpuMillicores:N0}m CPU" : null, a.Gpus > 0 ? $"{a.Gpus} GPU(s)" : null }.Where(s => s is not null));

    internal static string Name(JobState state) => state.ToString().ToLowerInvariant();

    private static string Format(DateTimeOffset? at) => at is { } t ? t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture) : "-";

    internal static string Span(TimeSpan span) => span.TotalSeconds switch
    {
        < 0 => "0 s",
        < 120 => $"{span.TotalSeconds:0} s",
        < 7200 => $"{span.TotalMinutes:0} min",
        < 172_800 => $"{span.TotalHours:0.#} h",
        _ => $"{span.TotalDays:0.#} days",
    };
}
