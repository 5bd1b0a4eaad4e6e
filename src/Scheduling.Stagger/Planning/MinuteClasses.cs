namespace Scheduling.Stagger;

/// <summary>
/// Groups the runs of a job by what surrounds them. The load in a minute is fixed by which jobs
/// start in it and in the few minutes before (their runs reach into it), so two runs whose window
/// of minutes has the same starters see the same load, whatever the offsets chosen so far. The
/// planner evaluates one run per group and weighs it by the group's size: an every-minute job's
/// 10,080 runs a week collapse into a handful of groups.
/// </summary>
internal sealed class MinuteClasses
{
    private readonly int[] _signature = new int[Timeline.Minutes];
    private readonly Dictionary<int, int[]> _windows = [];
    private readonly Dictionary<(int, int), int> _pairs = [];
    private readonly int _reachBack;

    public MinuteClasses(IReadOnlyList<StaggerPlanner.PreparedJob> jobs)
    {
        // A signature id per minute: equal ids mean the same set of jobs starts in those minutes. Built
        // by adding the jobs in order, each minute's id extended by (its id so far, job): the same set
        // of jobs always takes the same path, so it ends at the same id, with no per-minute set or key kept.
        var lastJob = new int[Timeline.Minutes];
        Array.Fill(lastJob, -1);
        var extended = new Dictionary<(int, int), int>();
        for (var j = 0; j < jobs.Count; j++)
        {
            foreach (var start in jobs[j].Starts)
            {
                var minute = start / 60 % Timeline.Minutes;
                if (lastJob[minute] == j) continue; // a 6-field job firing twice in one minute counts once
                lastJob[minute] = j;
                var key = (_signature[minute], j);
                if (!extended.TryGetValue(key, out var id)) extended[key] = id = extended.Count + 1;
                _signature[minute] = id;
            }
        }

        // How many minutes back a run can reach: a run starting at second 59 of its minute with the longest duration.
        _reachBack = jobs.Count == 0 ? 0 : MinutesSpanned(jobs.Max(j => j.Duration)) - 1;
    }

    /// <summary>The minutes a run that starts at second 0-59 of its minute and lasts <paramref name="duration"/> seconds can touch.</summary>
    public static int MinutesSpanned(int duration) => (59 + duration + 59) / 60;

    /// <summary>The job's runs grouped: one representative start (seconds) per group and the group's size.</summary>
    public List<(int Start, int Count)> Group(StaggerPlanner.PreparedJob job)
    {
        var window = Windows(_reachBack + MinutesSpanned(job.Duration));
        var groups = new Dictionary<int, (int Start, int Count)>();
        foreach (var start in job.Starts)
        {
            var id = IdAt(window, start);
            groups[id] = groups.TryGetValue(id, out var g) ? (g.Start, g.Count + 1) : (start, 1);
        }

        return groups.Values.ToList();
    }

    /// <summary>For each of the job's runs, the id of the surroundings it sees (what <see cref="Group"/> groups by).</summary>
    public int[] GroupIds(StaggerPlanner.PreparedJob job)
    {
        var window = Windows(_reachBack + MinutesSpanned(job.Duration));
        return job.Starts.Select(start => IdAt(window, start)).ToArray();
    }

    private int IdAt(int[] window, int start) => window[((start / 60 - _reachBack) % Timeline.Minutes + Timeline.Minutes) % Timeline.Minutes];

    /// <summary>An id per minute for the window of <paramref name="length"/> minutes starting there (circular).</summary>
    private int[] Windows(int length)
    {
        if (_windows.TryGetValue(length, out var cached)) return cached;
        var ids = length == 1 ? _signature : new int[Timeline.Minutes];
        if (length > 1)
        {
            var shorter = Windows(length - 1);
            for (var m = 0; m < Timeline.Minutes; m++)
            {
                var pair = (shorter[m], _signature[(m + length - 1) % Timeline.Minutes]);
                if (!_pairs.TryGetValue(pair, out var id)) _pairs[pair] = id = _pairs.Count + 1;
                ids[m] = id;
            }
        }

        _windows[length] = ids;
        return ids;
    }
}
