using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Scheduling.QueueContract;

/// <summary>
/// Properties over random DAGs (wide fan-out, deep chains, diamonds, random graphs; random
/// failures, policies and priorities), run against each store: jobs run only after their parents
/// finished as the policy requires, each at most once; the final states are exactly what the rules
/// give (so the cancelled set is exactly the failed jobs' waiting descendants under the default
/// policy); effective priority is always max(own, waiting children's); cycles are always rejected.
/// </summary>
public abstract partial class JobQueueContractTests
{
    /// <summary>How many random graphs each property tries; stores that are slow to set up may try fewer.</summary>
    protected virtual int PropertyRuns => 100;

    [Fact]
    public void Random_graphs_run_every_job_after_its_parents_and_end_as_the_rules_say()
    {
        var property = Prop.ForAll(Arb.From(GraphGen()), graph => Task.Run(() => RunGraphAsync(graph)).GetAwaiter().GetResult());
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(PropertyRuns), property);
    }

    [Fact]
    public void Graphs_with_a_cycle_are_always_rejected_and_nothing_is_written()
    {
        var gen =
            from graph in GraphGen()
            where graph.Parents.Any(p => p.Length > 0)
            from pick in Gen.Choose(0, 1000)
            select (graph, pick);
        var property = Prop.ForAll(Arb.From(gen), input => Task.Run(async () =>
        {
            var (graph, pick) = input;
            // Close a loop: a job with a parent now also depends on one of its descendants (or itself).
            var withParents = Enumerable.Range(0, graph.Size).Where(i => graph.Parents[i].Length > 0).ToArray();
            var ancestor = graph.Parents[withParents[pick % withParents.Length]][0];
            var descendants = Descendants(graph, ancestor);
            var loopFrom = descendants[pick % descendants.Count];
            var requests = Requests(graph).ToArray();
            requests[ancestor] = requests[ancestor] with { DependsOn = [.. requests[ancestor].DependsOn, JobDependency.OnRequest($"n{loopFrom}")] };

            var queue = await CreateQueueAsync();
            var error = await Assert.ThrowsAsync<ArgumentException>(() => queue.EnqueueManyAsync(requests).AsTask());
            Assert.True(error.Message.Contains("cycle", StringComparison.Ordinal) || error.Message.Contains("itself", StringComparison.Ordinal), error.Message);
            Assert.Empty(await queue.GetQueueStatsAsync());
            return true;
        }).GetAwaiter().GetResult());
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(PropertyRuns), property);
    }

    private static List<int> Descendants(Graph graph, int node)
    {
        var found = new List<int> { node };
        for (var i = node + 1; i < graph.Size; i++)
        {
            if (graph.Parents[i].Any(found.Contains)) found.Add(i);
        }

        return found;
    }

    /// <summary>A DAG over nodes 0..Size-1 whose parents always have smaller numbers.</summary>
    public sealed record Graph(int Size, int[][] Parents, bool[] Fails, bool[] RunAnyway, int[] Priorities, int SplitAt, int BatchSize)
    {
        public override string ToString() =>
            $"Graph(size {Size}, split {SplitAt}, batch {BatchSize}: {string.Join("; ", Enumerable.Range(0, Size).Select(i => $"{i}{(Fails[i] ? "!" : "")}{(RunAnyway[i] ? "~" : "")}p{Priorities[i]}<-[{string.Join(",", Parents[i])}]"))})";
    }

    private static Gen<Graph> GraphGen()
    {
        static Gen<int[][]> Shape(int size) => Gen.Elements("random", "fanout", "chain", "diamonds").SelectMany(shape => shape switch
        {
            "fanout" => Gen.Constant(Enumerable.Range(0, size).Select(i => i == 0 ? Array.Empty<int>() : [0]).ToArray()),
            "chain" => Gen.Constant(Enumerable.Range(0, size).Select(i => i == 0 ? Array.Empty<int>() : [i - 1]).ToArray()),
            "diamonds" => Gen.Constant(Enumerable.Range(0, size).Select(i => (i % 3) switch
            {
                0 when i >= 3 => new[] { i - 1, i - 2 },
                0 => [],
                _ => [i - i % 3],
            }).ToArray()),
            _ => Gen.Elements(0.1, 0.3, 0.6).SelectMany(density =>
                Gen.ArrayOf(Gen.Choose(0, 999), size * size).Select(draws =>
                    Enumerable.Range(0, size).Select(i => Enumerable.Range(0, i).Where(p => draws[i * size + p] < density * 1000).ToArray()).ToArray())),
        });

        return
            from size in Gen.Choose(1, 20)
            from parents in Shape(size)
            from failRate in Gen.Elements(0, 0, 5, 15, 30)
            from fails in Gen.ArrayOf(Gen.Choose(0, 99), size).Select(d => d.Select(x => x < failRate).ToArray())
            from anyway in Gen.ArrayOf(Gen.Choose(0, 99), size).Select(d => d.Select(x => x < 20).ToArray())
            from priorities in Gen.ArrayOf(Gen.Choose(-2, 3), size)
            from splitAt in Gen.Choose(0, size)
            from batch in Gen.Choose(1, 5)
            select new Graph(size, parents, fails, anyway, priorities, splitAt, batch);
    }

    private static IEnumerable<JobRequest> Requests(Graph graph) => Enumerable.Range(0, graph.Size).Select(i => new JobRequest($"n{i}")
    {
        LocalKey = $"n{i}",
        MaxAttempts = 1,
        Priority = graph.Priorities[i],
        OnParentFailure = graph.RunAnyway[i] ? ParentFailurePolicy.RunAnyway : ParentFailurePolicy.CancelChild,
        DependsOn = graph.Parents[i].Select(p => JobDependency.OnRequest($"n{p}")).ToArray(),
    });

    /// <summary>The final states the rules give, whatever the order of execution.</summary>
    private static JobState[] Expected(Graph graph)
    {
        var states = new JobState[graph.Size];
        for (var i = 0; i < graph.Size; i++)
        {
            var parentFailed = graph.Parents[i].Any(p => states[p] is JobState.Dead or JobState.Cancelled);
            states[i] = parentFailed && !graph.RunAnyway[i] ? JobState.Cancelled : graph.Fails[i] ? JobState.Dead : JobState.Succeeded;
        }

        return states;
    }

    private async Task<bool> RunGraphAsync(Graph graph)
    {
        var queue = await CreateQueueAsync();
        var ids = new long[graph.Size];
        var byId = new Dictionary<long, int>();
        var requests = Requests(graph).ToArray();

        // The first part in one call with local references; the rest later, by id, once some of it has run.
        var first = await queue.EnqueueManyAsync(requests[..graph.SplitAt]);
        for (var i = 0; i < graph.SplitAt; i++) (ids[i], byId[first[i].JobId]) = (first[i].JobId, i);
        var enqueuedRest = graph.SplitAt == graph.Size;

        var ran = new int[graph.Size];
        var states = new JobState?[graph.Size];
        for (var round = 0; round < 10 * graph.Size + 10; round++)
        {
            var jobs = await queue.AcquireAsync(Take(graph.BatchSize));
            if (jobs.Count == 0)
            {
                if (enqueuedRest) break;
                var rest = requests[graph.SplitAt..].Select((r, k) => r with
                {
                    DependsOn = graph.Parents[graph.SplitAt + k].Select(p => p < graph.SplitAt ? JobDependency.OnJob(ids[p]) : JobDependency.OnRequest($"n{p}")).ToArray(),
                }).ToArray();
                var second = await queue.EnqueueManyAsync(rest);
                for (var k = 0; k < rest.Length; k++) (ids[graph.SplitAt + k], byId[second[k].JobId]) = (second[k].JobId, graph.SplitAt + k);
                enqueuedRest = true;
                await RefreshAsync(); // jobs can start (or be cancelled) already finished parents' way
                continue;
            }

            foreach (var job in jobs)
            {
                var node = byId[job.Id];
                ran[node]++;
                foreach (var parent in graph.Parents[node])
                {
                    var parentState = states[parent];
                    Assert.True(parentState is JobState.Succeeded || (graph.RunAnyway[node] && parentState is JobState.Dead or JobState.Cancelled),
                        $"Job {node} started while its parent {parent} was {parentState?.ToString() ?? "unfinished"}.");
                }
            }

            var results = await queue.AcknowledgeAsync(jobs.Select(j => graph.Fails[byId[j.Id]] ? JobAck.Failure(j.Lease, "planned", retryable: false) : JobAck.Success(j.Lease)).ToArray());
            Assert.All(results, r => Assert.True(r.Applied));
            await RefreshAsync();
        }

        await RefreshAsync();
        var expected = Expected(graph);
        for (var i = 0; i < graph.Size; i++)
        {
            Assert.True(expected[i] == states[i], $"Job {i} ended {states[i]}; the rules say {expected[i]}.");
            Assert.Equal(expected[i] == JobState.Cancelled ? 0 : 1, ran[i]);
        }

        await AssertConsistentAsync(queue);
        return true;

        async Task RefreshAsync()
        {
            var infos = new Dictionary<int, JobInfo>();
            foreach (var (id, node) in byId) infos[node] = (await queue.GetJobAsync(id))!;
            foreach (var (node, info) in infos)
            {
                states[node] = info.State.IsTerminal() ? info.State : null;
                if (info.State.IsTerminal()) continue;
                var lent = info.Children.Where(c => c.State == JobState.Waiting).Select(c => infos[byId[c.JobId]].EffectivePriority);
                Assert.Equal(lent.Append(info.Priority).Max(), info.EffectivePriority);
            }
        }
    }
}
