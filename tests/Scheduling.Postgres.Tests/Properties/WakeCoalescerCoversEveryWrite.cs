using FsCheck;
using FsCheck.Fluent;
using Scheduling.Postgres.Notifications;
using Xunit;

namespace Scheduling.Postgres.Tests.Properties;

/// <summary>
/// The enqueue wake-ups, driven step by step through random interleavings of writes beginning and
/// ending (committed or rolled back) over a few queues and of notifies sent on their own completing
/// or failing: at no instant are two notifies of one queue in flight, every committed write is
/// followed by a notify of each of its queues that began after it ended (or carried its own), and
/// nothing is left tracked once all is done. No thread and no clock: each step is applied in order.
/// </summary>
public sealed class WakeCoalescerCoversEveryWrite
{
    private static readonly string[] Queues = ["a", "b", "c"];

    private abstract record Step;

    private sealed record BeginWrite(string[] Queues) : Step;

    private sealed record EndWrite(int Pick, bool Committed) : Step;

    private sealed record FinishSend(int Pick, bool Fails) : Step;

    private sealed class Write(string[] queues, string[] carried)
    {
        public string[] Queues { get; } = queues;

        public string[] Carried { get; } = carried;
    }

    private sealed record Send(string[] Queues, long StartedAt, TaskCompletionSource Done);

    [Fact]
    public void Every_committed_write_is_woken_with_at_most_one_notify_in_flight_per_queue()
    {
        var queueSet = Gen.SubListOf(Queues).Where(q => q.Count > 0).Select(q => q.ToArray());
        var step = Gen.Frequency(
            (3, queueSet.Select(q => (Step)new BeginWrite(q))),
            (3, from pick in Gen.Choose(0, 9) from committed in Gen.Elements(true, true, false) select (Step)new EndWrite(pick, committed)),
            (2, from pick in Gen.Choose(0, 9) from fails in Gen.Elements(false, false, false, true) select (Step)new FinishSend(pick, fails)));
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), Prop.ForAll(Arb.From(Gen.ListOf(step, 40).Select(s => s.ToArray())),
            // Off the test framework's synchronization context, a completed notify's continuation runs at once, on the completing thread.
            steps => Task.Run(() => Run(steps)).GetAwaiter().GetResult()));
    }

    private static bool Run(Step[] steps)
    {
        long clock = 0;
        var inFlight = Queues.ToDictionary(q => q, _ => 0);
        var sends = new List<Send>();
        var pendingSends = new List<Send>();
        var violations = new List<string>();
        var log = new List<string>();
        var coalescer = new WakeCoalescer(queues =>
        {
            // Recorded, not thrown: the coalescer counts a throwing send as a failed one.
            foreach (var queue in queues)
                if (++inFlight[queue] != 1) violations.Add($"a second notify of '{queue}' in flight at {clock}");
            var send = new Send(queues, ++clock, new TaskCompletionSource());
            log.Add($"{clock} send {string.Join(",", queues)}");
            sends.Add(send);
            pendingSends.Add(send);
            return send.Done.Task;
        });
        var open = new List<Write>();
        var owed = new List<(string Queue, long EndedAt)>();
        var failed = 0;

        void End(Write write, bool committed)
        {
            open.Remove(write);
            foreach (var queue in write.Carried) inFlight[queue]--;
            var endedAt = ++clock;
            log.Add($"{clock} end {string.Join(",", write.Queues)} carried {string.Join(",", write.Carried)} committed {committed}");
            if (committed) owed.AddRange(write.Queues.Except(write.Carried).Select(q => (q, endedAt)));
            coalescer.End(write.Queues, write.Carried, committed);
        }

        void Finish(Send send, bool fails)
        {
            pendingSends.Remove(send);
            log.Add($"{clock} finish send@{send.StartedAt} {string.Join(",", send.Queues)} fails {fails}");
            foreach (var queue in send.Queues) inFlight[queue]--;
            if (fails) failed++;
            if (fails) send.Done.SetException(new InvalidOperationException("the server went away"));
            else send.Done.SetResult(); // the coalescer's continuation runs here, on this thread
        }

        foreach (var s in steps)
        {
            switch (s)
            {
                case BeginWrite begin:
                    var carried = coalescer.Begin(begin.Queues);
                    foreach (var queue in carried)
                        Assert.True(++inFlight[queue] == 1, $"a write carries a notify of '{queue}' while another is in flight");
                    clock++;
                    log.Add($"{clock} begin {string.Join(",", begin.Queues)} carries {string.Join(",", carried)}");
                    open.Add(new Write(begin.Queues, carried));
                    break;
                case EndWrite end when open.Count > 0:
                    End(open[end.Pick % open.Count], end.Committed);
                    break;
                case FinishSend finish when pendingSends.Count > 0:
                    Finish(pendingSends[finish.Pick % pendingSends.Count], finish.Fails);
                    break;
            }
        }

        // Quiesce: every write ends (committed), then every notify completes, including those each completion starts.
        while (open.Count > 0) End(open[0], committed: true);
        while (pendingSends.Count > 0) Finish(pendingSends[0], fails: false);

        Assert.Empty(violations);
        foreach (var (queue, endedAt) in owed)
            Assert.True(sends.Exists(send => send.StartedAt > endedAt && send.Queues.Contains(queue)), $"a write to '{queue}' ended at {endedAt} was never followed by a notify\n" + string.Join("\n", log));
        Assert.Equal(0, coalescer.Tracked);
        Assert.All(inFlight.Values, n => Assert.Equal(0, n));
        Assert.Equal(failed, coalescer.FailedSends); // counted, and swallowed: the workers' poll finds those jobs
        return true;
    }
}
