namespace Scheduling.Internal;

/// <summary>
/// The dependencies of one enqueue call, checked before anything is written: local keys are
/// unique, every local reference names a request of the call, nothing depends on itself, the
/// references form no cycle. Every store enqueues the requests layer by layer, parents first.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public sealed class JobGraph
{
    /// <summary>The most parents one job may name.</summary>
    public const int MaxParents = 1000;

    private JobGraph(long[][] existingParents, int[][] localParents, List<int[]> layers)
    {
        ExistingParents = existingParents;
        LocalParents = localParents;
        Layers = layers;
        HasDependencies = existingParents.Any(p => p.Length > 0) || localParents.Any(p => p.Length > 0);
    }

    /// <summary>Per request: the distinct ids of existing jobs it depends on.</summary>
    public long[][] ExistingParents { get; }

    /// <summary>Per request: the distinct indexes of requests of the same call it depends on.</summary>
    public int[][] LocalParents { get; }

    /// <summary>Request indexes in topological layers: every request's local parents are in earlier layers.</summary>
    public List<int[]> Layers { get; }

    /// <summary>True when any request has a parent.</summary>
    public bool HasDependencies { get; }

    /// <summary>Every existing job id named by the call, distinct and ascending (the order rows are locked in).</summary>
    public long[] AllExistingParents() => ExistingParents.SelectMany(p => p).Distinct().Order().ToArray();

    /// <summary>Validates the dependencies of one enqueue call and orders its requests in layers, parents first; names the offending requests when the graph is not valid.</summary>
    public static JobGraph Build(IReadOnlyList<JobRequest> requests, Func<int, string> name)
    {
        var byKey = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < requests.Count; i++)
        {
            if (requests[i].LocalKey is not { } key) continue;
            if (key.Length is 0 or > JobValidation.MaxUniqueKeyLength)
                throw new ArgumentException($"A local key must be 1-{JobValidation.MaxUniqueKeyLength} characters (was {key.Length}).", $"{name(i)}.{nameof(JobRequest.LocalKey)}");
            if (!byKey.TryAdd(key, i))
                throw new ArgumentException($"The local key '{key}' is used by both {name(byKey[key])} and {name(i)}; local keys must be unique within a call.", $"{name(i)}.{nameof(JobRequest.LocalKey)}");
        }

        var existing = new long[requests.Count][];
        var local = new int[requests.Count][];
        for (var i = 0; i < requests.Count; i++)
        {
            var dependsOn = requests[i].DependsOn ?? throw new ArgumentNullException($"{name(i)}.{nameof(JobRequest.DependsOn)}", "DependsOn must not be null; use an empty list.");
            if (dependsOn.Count > MaxParents)
                throw new ArgumentException($"The job depends on {dependsOn.Count} parents; the limit is {MaxParents}.", $"{name(i)}.{nameof(JobRequest.DependsOn)}");
            if (!Enum.IsDefined(requests[i].OnParentFailure))
                throw new ArgumentOutOfRangeException($"{name(i)}.{nameof(JobRequest.OnParentFailure)}", requests[i].OnParentFailure, $"Unknown parent-failure policy {(int)requests[i].OnParentFailure}; use {nameof(ParentFailurePolicy.CancelChild)} or {nameof(ParentFailurePolicy.RunAnyway)}.");
            var ids = new List<long>();
            var indexes = new List<int>();
            for (var k = 0; k < dependsOn.Count; k++)
            {
                var dependency = dependsOn[k];
                var parameter = $"{name(i)}.{nameof(JobRequest.DependsOn)}[{k}]";
                if (dependency.JobId is { } id)
                {
                    if (id < 1) throw new ArgumentOutOfRangeException(parameter, id, "Job ids are positive.");
                    if (!ids.Contains(id)) ids.Add(id);
                }
                else if (dependency.LocalKey is { } key)
                {
                    if (!byKey.TryGetValue(key, out var parent))
                        throw new ArgumentException($"No request of this call has the local key '{key}'.", parameter);
                    if (parent == i) throw new ArgumentException($"{name(i)} depends on itself (local key '{key}').", parameter);
                    if (!indexes.Contains(parent)) indexes.Add(parent);
                }
                else
                {
                    throw new ArgumentException("A dependency names neither a job id nor a local key; use JobDependency.OnJob or JobDependency.OnRequest.", parameter);
                }
            }

            existing[i] = ids.ToArray();
            local[i] = indexes.ToArray();
        }

        return new JobGraph(existing, local, Layer(local, requests, name));
    }

    /// <summary>Kahn's algorithm by layers; what is left over lies on or behind a cycle, and one cycle is named.</summary>
    private static List<int[]> Layer(int[][] parents, IReadOnlyList<JobRequest> requests, Func<int, string> name)
    {
        var count = parents.Length;
        var pending = new int[count];
        var children = new List<int>[count];
        for (var i = 0; i < count; i++)
        {
            pending[i] = parents[i].Length;
            foreach (var p in parents[i]) (children[p] ??= []).Add(i);
        }

        var layers = new List<int[]>();
        var current = Enumerable.Range(0, count).Where(i => pending[i] == 0).ToArray();
        var placed = 0;
        while (current.Length > 0)
        {
            layers.Add(current);
            placed += current.Length;
            var next = new List<int>();
            foreach (var done in current)
            {
                if (children[done] is not { } list) continue;
                foreach (var child in list)
                {
                    if (--pending[child] == 0) next.Add(child);
                }
            }

            current = next.ToArray();
        }

        if (placed == count) return layers;

        // Walk parents among the unplaced until a request repeats: that loop is a cycle.
        var start = Enumerable.Range(0, count).First(i => pending[i] > 0);
        var path = new List<int>();
        var seen = new Dictionary<int, int>();
        var at = start;
        while (!seen.ContainsKey(at))
        {
            seen[at] = path.Count;
            path.Add(at);
            at = parents[at].First(p => pending[p] > 0);
        }

        var cycle = path.Skip(seen[at]).Reverse().Append(at).Select(i => requests[i].LocalKey is { } key ? $"{name(i)} ('{key}')" : name(i));
        throw new ArgumentException($"The dependencies form a cycle: {string.Join(" -> ", cycle)}.", nameof(requests));
    }

    /// <summary>The error for parent ids that name no job, naming them and the requests that used them.</summary>
    public ArgumentException UnknownParents(IReadOnlyCollection<long> missing, Func<int, string> name)
    {
        var users = Enumerable.Range(0, ExistingParents.Length).Where(i => ExistingParents[i].Any(missing.Contains)).Select(name);
        var parameter = ExistingParents.Length == 1 ? $"{name(0)}.{nameof(JobRequest.DependsOn)}" : "requests";
        return new ArgumentException($"No job has the id{(missing.Count == 1 ? "" : "s")} {string.Join(", ", missing.Order())} (named in DependsOn of {string.Join(", ", users)}); nothing was enqueued.", parameter);
    }
}

/// <summary>The dependency rules both stores apply, so they agree on every outcome.</summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class DependencyRules
{
    /// <summary>
    /// A new job's state when it is enqueued, from its parents' states: a succeeded parent counts as
    /// met; a dead, cancelled or expired one cancels the job (default policy) or counts as met (run anyway);
    /// any other parent is pending. A batch callback (<see cref="PreparedJob.HeldByBatch"/>, which has no
    /// parents) waits with its batch as its one pending parent.
    /// </summary>
    public static (JobState State, int Pending, long FailedParent, JobState FailedState) Initial(PreparedJob job, IEnumerable<(long Id, JobState State)> parents)
    {
        if (job.HeldByBatch) return (JobState.Waiting, 1, 0, default);
        var pending = 0;
        foreach (var (id, state) in parents)
        {
            if (Cancels(state, job.OnParentFailure)) return (JobState.Cancelled, 0, id, state);
            if (!state.IsTerminal()) pending++;
        }

        return (pending > 0 ? JobState.Waiting : JobState.Available, pending, 0, default);
    }

    /// <summary>Whether a parent ending in <paramref name="parentState"/> cancels a child with <paramref name="policy"/>.</summary>
    public static bool Cancels(JobState parentState, ParentFailurePolicy policy) =>
        parentState.IsTerminal() && parentState != JobState.Succeeded && policy == ParentFailurePolicy.CancelChild;

    /// <summary>The error recorded on a job cancelled because a parent failed.</summary>
    public static string CancelledBecause(long parentId, JobState parentState) =>
        $"Parent job {parentId} ended {parentState.ToString().ToLowerInvariant()}; cancelled by the CancelChild policy.";
}
