namespace Scheduling.Stagger;

/// <summary>
/// Finds which jobs meet: over one week (the period of weekly and finer schedules) at second
/// resolution, the pairs that start in the same second or run at once, how often per day, and
/// the peak number of jobs running together with the instants where it occurs. Jobs with
/// different offsets can still meet (an every-minute job and a long hourly one), and jobs with the
/// same offset may never meet (different minutes): both follow from the simulation.
/// </summary>
public static class CollisionAnalyzer
{
    /// <summary>The most peak instants listed.</summary>
    public const int MaxPeakInstants = 20;

    /// <summary>Analyses jobs as they would run: 5-field expressions at second 0, 6-field ones as written.</summary>
    public static CollisionReport Analyze(IReadOnlyList<StaggerJob> jobs)
    {
        var prepared = StaggerPlanner.Prepare(jobs);
        var events = new List<(int Start, int Job)>();
        for (var j = 0; j < prepared.Count; j++)
        {
            foreach (var start in prepared[j].Starts) events.Add((start, j));
        }

        events.Sort();
        var load = new int[Timeline.Seconds];
        foreach (var (start, job) in events) Timeline.Add(load, start, prepared[job].Duration, 1);
        var peak = Timeline.Peak(load);
        var instants = new List<DateTimeOffset>();
        for (var t = 0; t < load.Length && instants.Count < MaxPeakInstants; t++)
        {
            if (load[t] == peak && peak > 0 && (t == 0 || load[t - 1] != peak)) instants.Add(new DateTimeOffset(Timeline.Start.AddSeconds(t)));
        }

        // Sweep: each pair of intersecting runs is counted once, when the later one starts.
        var overlaps = new Dictionary<(int, int), int>();
        var sameSecond = new Dictionary<(int, int), int>();
        var active = new List<(int End, int Job)>();
        for (var i = 0; i < events.Count;)
        {
            var t = events[i].Start;
            active.RemoveAll(a => a.End <= t);
            var group = new List<int>();
            for (; i < events.Count && events[i].Start == t; i++) group.Add(events[i].Job);
            foreach (var job in group)
            {
                foreach (var (_, other) in active)
                {
                    if (other != job) Count(overlaps, job, other);
                }
            }

            for (var a = 0; a < group.Count; a++)
            {
                for (var b = a + 1; b < group.Count; b++)
                {
                    if (group[a] == group[b]) continue;
                    Count(overlaps, group[a], group[b]);
                    Count(sameSecond, group[a], group[b]);
                }
            }

            foreach (var job in group) active.Add((t + prepared[job].Duration, job));
        }

        // Runs that wrap past the end of the week meet runs at its start.
        foreach (var (start, job) in events.Where(e => e.Start + prepared[e.Job].Duration > Timeline.Seconds))
        {
            var end = start + prepared[job].Duration - Timeline.Seconds;
            foreach (var (_, otherJob) in events.TakeWhile(e => e.Start < end))
            {
                if (otherJob != job) Count(overlaps, job, otherJob);
            }
        }

        var pairs = overlaps.Select(o => new CollisionPair(
                prepared[o.Key.Item1].Job.Name, prepared[o.Key.Item2].Job.Name,
                sameSecond.GetValueOrDefault(o.Key) / 7.0, o.Value / 7.0))
            .OrderByDescending(p => p.OverlapsPerDay).ThenBy(p => p.First, StringComparer.Ordinal).ThenBy(p => p.Second, StringComparer.Ordinal)
            .ToArray();
        return new CollisionReport(pairs, peak, instants);
    }

    /// <summary>
    /// How many of <paramref name="jobs"/> run at each second of the reference week (<see cref="Timeline.Start"/>),
    /// as <see cref="Analyze"/> counts them: the series behind its peak.
    /// </summary>
    internal static int[] Load(IReadOnlyList<StaggerJob> jobs)
    {
        var load = new int[Timeline.Seconds];
        foreach (var job in StaggerPlanner.Prepare(jobs))
            foreach (var start in job.Starts) Timeline.Add(load, start, job.Duration, 1);
        return load;
    }

    private static void Count(Dictionary<(int, int), int> counts, int a, int b)
    {
        var key = a < b ? (a, b) : (b, a);
        counts[key] = counts.GetValueOrDefault(key) + 1;
    }
}

/// <summary>Two jobs that meet.</summary>
/// <param name="First">One job (ordinal order within the pair follows input order).</param>
/// <param name="Second">The other job.</param>
/// <param name="SameSecondPerDay">How often per day both start in the same second.</param>
/// <param name="OverlapsPerDay">How often per day their runs overlap (same-second starts included).</param>
public sealed record CollisionPair(string First, string Second, double SameSecondPerDay, double OverlapsPerDay);

/// <summary>The result of <see cref="CollisionAnalyzer.Analyze"/>.</summary>
/// <param name="Pairs">The pairs that meet, most frequent first.</param>
/// <param name="PeakConcurrency">The most jobs running at once.</param>
/// <param name="PeakInstants">When the peak begins (UTC, within the reference week 2026-01-05..11), up to 20.</param>
public sealed record CollisionReport(IReadOnlyList<CollisionPair> Pairs, int PeakConcurrency, IReadOnlyList<DateTimeOffset> PeakInstants);
