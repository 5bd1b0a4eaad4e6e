namespace Scheduling.Stagger;

/// <summary>
/// Chooses seconds offsets that minimise peak concurrency, then total overlap, from expected
/// durations. Greedy: the most demanding jobs (runs per week x duration) are placed first, each at
/// the offset where the busiest second it would occupy is least busy; ties go to the job's hash
/// offset, so plans stay close to the hash strategy and to each other. The result is kept only if
/// it beats the hash strategy; otherwise the hash offsets are returned. Deterministic.
/// </summary>
/// <remarks>
/// Minimising the peak exactly is NP-hard (offset assignment in periodic scheduling), so the plan
/// reports a lower bound beside its peak. Jobs given in <c>previous</c> keep their offsets and only
/// the others are placed, which is how a plan grows by one job without moving the rest.
/// </remarks>
public static class StaggerPlanner
{
    private const int MaxImprovementPasses = 4;

    /// <summary>Plans offsets for <paramref name="jobs"/>.</summary>
    /// <param name="jobs">The jobs; names must be unique.</param>
    /// <param name="fixedOffsets">Offsets that must be kept (configured by hand).</param>
    /// <param name="previous">An earlier plan's offsets; those jobs keep them (incremental planning).</param>
    /// <exception cref="ArgumentException">A name repeats, an expression is invalid, or an offset is outside 0-59.</exception>
    public static StaggerPlan Plan(IReadOnlyList<StaggerJob> jobs, IReadOnlyDictionary<string, int>? fixedOffsets = null, IReadOnlyDictionary<string, int>? previous = null)
    {
        var prepared = Prepare(jobs);
        var kept = new Dictionary<string, (int Offset, StaggerSource Source)>(StringComparer.Ordinal);
        foreach (var (name, offset) in fixedOffsets ?? new Dictionary<string, int>()) kept[name] = (CheckOffset(name, offset), StaggerSource.Configured);
        foreach (var (name, offset) in previous ?? new Dictionary<string, int>()) kept.TryAdd(name, (CheckOffset(name, offset), StaggerSource.Planned));

        // One week-long load (2.4 MB) serves the two reference peaks and then the greedy placement.
        var load = new int[Timeline.Seconds];
        var unstaggered = PeakOf(load, prepared, j => j.Schedule.HasSeconds ? j.Schedule.FixedSecond ?? 0 : 0);
        var hashOffsets = prepared.ToDictionary(j => j.Job.Name, j => kept.TryGetValue(j.Job.Name, out var k) ? k.Offset : StaggerHash.Offset(j.Job.Name), StringComparer.Ordinal);
        var hashed = PeakOf(load, prepared, j => hashOffsets[j.Job.Name]);

        // Greedy placement on a shared week-long load.
        var classes = new MinuteClasses(prepared);
        var groups = prepared.ToDictionary(j => j.Job.Name, classes.Group, StringComparer.Ordinal);
        Array.Clear(load);
        var chosen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var job in prepared.Where(j => j.Schedule.HasSeconds || kept.ContainsKey(j.Job.Name)))
        {
            var offset = job.Schedule.HasSeconds ? 0 : kept[job.Job.Name].Offset;
            chosen[job.Job.Name] = offset;
            foreach (var start in job.Starts) Timeline.Add(load, start + offset, job.Duration, 1);
        }

        var free = prepared.Where(j => !chosen.ContainsKey(j.Job.Name))
            .OrderByDescending(j => (long)j.Starts.Length * j.Duration)
            .ThenBy(j => j.Job.Name, StringComparer.Ordinal)
            .ToList();
        foreach (var job in free)
        {
            var offset = BestOffset(load, job, groups[job.Job.Name]);
            chosen[job.Job.Name] = offset;
            foreach (var start in job.Starts) Timeline.Add(load, start + offset, job.Duration, 1);
        }

        // Improvement passes: lift each free job out and put it back at its best offset given all
        // the others, until a pass moves nothing (or a few passes have run).
        for (var pass = 0; pass < MaxImprovementPasses; pass++)
        {
            var moved = false;
            foreach (var job in free)
            {
                var current = chosen[job.Job.Name];
                foreach (var start in job.Starts) Timeline.Add(load, start + current, job.Duration, -1);
                var offset = BestOffset(load, job, groups[job.Job.Name]);
                foreach (var start in job.Starts) Timeline.Add(load, start + offset, job.Duration, 1);
                if (offset != current)
                {
                    chosen[job.Job.Name] = offset;
                    moved = true;
                }
            }

            if (!moved) break;
        }

        var greedy = Timeline.Peak(load);
        var useGreedy = greedy <= hashed;
        var assignments = prepared.Select(j =>
        {
            if (j.Schedule.HasSeconds) return new StaggerAssignment(j.Job.Name, j.Job.Cron, j.Schedule.WithOffset(0), j.Schedule.FixedSecond ?? 0, StaggerSource.Explicit);
            if (kept.TryGetValue(j.Job.Name, out var k)) return new StaggerAssignment(j.Job.Name, j.Job.Cron, j.Schedule.WithOffset(k.Offset), k.Offset, k.Source);
            var offset = useGreedy ? chosen[j.Job.Name] : hashOffsets[j.Job.Name];
            return new StaggerAssignment(j.Job.Name, j.Job.Cron, j.Schedule.WithOffset(offset), offset, useGreedy ? StaggerSource.Planned : StaggerSource.Hashed);
        }).ToArray();

        return new StaggerPlan
        {
            Assignments = assignments,
            PeakConcurrency = Math.Min(greedy, hashed),
            UnstaggeredPeakConcurrency = unstaggered,
            HashedPeakConcurrency = hashed,
            LowerBound = LowerBound(prepared),
            Strategy = useGreedy ? "greedy" : "hash",
        };
    }

    /// <summary>
    /// The offset whose busiest occupied second is least busy, then whose occupied seconds are
    /// least busy in sum, then nearest the job's hash offset. Each run's window is evaluated on
    /// the 60 + duration seconds around its minute only, and runs that see the same surroundings
    /// are evaluated once (<see cref="MinuteClasses"/>), so the cost follows the distinct situations, not the week.
    /// </summary>
    private static int BestOffset(int[] load, PreparedJob job, List<(int Start, int Count)> groups)
    {
        var peak = new int[60];
        var overlap = new long[60];
        var d = job.Duration;
        var span = 59 + d;
        var segment = new int[span];
        var window = new int[60];
        var deque = new int[span];
        foreach (var (start, count) in groups)
        {
            for (var i = 0; i < span; i++) segment[i] = load[(start + i) % Timeline.Seconds];
            SlidingMax(segment, d, window, deque);
            long sum = 0;
            for (var i = 0; i < d; i++) sum += segment[i];
            for (var s = 0; s < 60; s++)
            {
                if (window[s] > peak[s]) peak[s] = window[s];
                overlap[s] += sum * count;
                if (s + d < span) sum += segment[s + d] - segment[s];
            }
        }

        var hash = StaggerHash.Offset(job.Job.Name);
        var best = -1;
        for (var s = 0; s < 60; s++)
        {
            if (best < 0 || peak[s] < peak[best] || (peak[s] == peak[best] && (overlap[s] < overlap[best] ||
                (overlap[s] == overlap[best] && CircularDistance(s, hash) < CircularDistance(best, hash)))))
                best = s;
        }

        return best;
    }

    /// <summary>window[s] = max(segment[s .. s+d-1]) for s in 0..59 (monotonic deque).</summary>
    private static void SlidingMax(int[] segment, int d, int[] window, int[] deque)
    {
        int head = 0, tail = 0;
        for (var i = 0; i < segment.Length; i++)
        {
            while (tail > head && segment[deque[tail - 1]] <= segment[i]) tail--;
            deque[tail++] = i;
            if (deque[head] <= i - d) head++;
            var s = i - d + 1;
            if (s >= 0 && s < 60) window[s] = segment[deque[head]];
        }
    }

    private static int CircularDistance(int a, int b) => Math.Min(Math.Abs(a - b), 60 - Math.Abs(a - b));

    private static int PeakOf(int[] load, List<PreparedJob> jobs, Func<PreparedJob, int> offsetOf)
    {
        Array.Clear(load);
        foreach (var job in jobs)
        {
            var offset = job.Schedule.HasSeconds ? 0 : offsetOf(job);
            foreach (var start in job.Starts) Timeline.Add(load, start + offset, job.Duration, 1);
        }

        return Timeline.Peak(load);
    }

    /// <summary>
    /// Jobs that start in the same minute must fit their first minute of running (at most 60
    /// seconds each) into the 59 + longest-run seconds that minute's runs can reach.
    /// </summary>
    private static int LowerBound(List<PreparedJob> jobs)
    {
        if (jobs.Count == 0) return 0;
        var busy = new long[Timeline.Minutes];
        var longest = new int[Timeline.Minutes];
        foreach (var job in jobs)
        {
            foreach (var start in job.Starts)
            {
                var minute = start / 60;
                busy[minute] += Math.Min(job.Duration, 60);
                longest[minute] = Math.Max(longest[minute], Math.Min(job.Duration, 60));
            }
        }

        var bound = 1;
        for (var m = 0; m < Timeline.Minutes; m++)
        {
            if (busy[m] > 0) bound = Math.Max(bound, (int)Math.Ceiling(busy[m] / (double)(59 + longest[m])));
        }

        return bound;
    }

    private static int CheckOffset(string name, int offset) =>
        offset is >= 0 and <= 59 ? offset : throw new ArgumentOutOfRangeException(nameof(offset), offset, $"The offset of '{name}' must be between 0 and 59.");

    internal static List<PreparedJob> Prepare(IReadOnlyList<StaggerJob> jobs)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var prepared = new List<PreparedJob>(jobs.Count);
        for (var i = 0; i < jobs.Count; i++)
        {
            var job = jobs[i] ?? throw new ArgumentException($"jobs[{i}] is null.", nameof(jobs));
            if (string.IsNullOrWhiteSpace(job.Name)) throw new ArgumentException($"jobs[{i}] has no name.", nameof(jobs));
            if (!names.Add(job.Name)) throw new ArgumentException($"The job name '{job.Name}' appears more than once.", nameof(jobs));
            if (job.ExpectedDuration < TimeSpan.Zero) throw new ArgumentException($"The expected duration of '{job.Name}' is negative.", nameof(jobs));
            var schedule = CronSchedule.Parse(job.Cron, $"jobs[{i}].Cron");
            var zone = job.TimeZone ?? TimeZoneInfo.Utc;
            var starts = schedule.HasSeconds
                ? Timeline.FiringSeconds(schedule.WithOffset(0), schedule.FixedSecond, zone)
                : Timeline.FiringMinuteStarts(schedule, zone);
            prepared.Add(new PreparedJob(job, schedule, starts, Timeline.DurationSeconds(job.ExpectedDuration)));
        }

        return prepared;
    }

    internal sealed record PreparedJob(StaggerJob Job, CronSchedule Schedule, int[] Starts, int Duration);
}
