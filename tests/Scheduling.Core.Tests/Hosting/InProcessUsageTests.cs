using System.Collections.Concurrent;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Scheduling.Core.Tests.Hosting.Roles;
using Scheduling.Hosting;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Core.Tests.Hosting;

/// <summary>What a host records of its own process for a sized job whose handler reported no usage.</summary>
public sealed class InProcessUsageTests
{
    private sealed class CountingProbe : IProcessUsageProbe
    {
        public int Begun;
        public int Ended;

        public ProcessMark? Begin()
        {
            Interlocked.Increment(ref Begun);
            return new ProcessMark(100_000, TimeSpan.Zero);
        }

        public ProcessUsage? End(ProcessMark mark, TimeSpan elapsed)
        {
            Interlocked.Increment(ref Ended);
            return new ProcessUsage(700, 1_500);
        }
    }

    private static AcquiredJob SizedJob(long id) => FakeStore.Job(id) with
    {
        Allocation = new ResourceAllocation { DefinitionId = "d", MemoryMb = 1_000, CpuMillicores = 500, Gpus = 0, BaselineMemoryMb = 1_000, Source = AllocationSource.Baseline, SkipReason = AraSkipReason.None },
    };

    [Fact]
    public void A_sized_job_that_ran_alone_and_reported_nothing_gets_the_observed_peak_and_cpu()
    {
        var probe = new CountingProbe();
        var observer = new InProcessUsage(probe);
        var usage = new ResourceUsage();

        Assert.True(observer.Begin(SizedJob(1)).Complete(usage, TimeSpan.FromSeconds(2)));

        Assert.Equal((700, 1_500), (usage.PeakMemoryMb, usage.PeakCpuMillicores));
    }

    [Fact]
    public void What_the_handler_reported_wins_and_unsized_or_oom_killed_runs_are_left_alone()
    {
        var probe = new CountingProbe();
        var observer = new InProcessUsage(probe);

        var reported = new ResourceUsage { PeakMemoryMb = 42 };
        Assert.False(observer.Begin(SizedJob(1)).Complete(reported, TimeSpan.FromSeconds(1)));
        Assert.Equal((42, (int?)null), (reported.PeakMemoryMb, reported.PeakCpuMillicores));

        var killed = new ResourceUsage { OomKilled = true };
        Assert.False(observer.Begin(SizedJob(2)).Complete(killed, TimeSpan.FromSeconds(1)));
        Assert.Null(killed.PeakMemoryMb);

        var unsized = new ResourceUsage();
        Assert.False(observer.Begin(FakeStore.Job(3)).Complete(unsized, TimeSpan.FromSeconds(1)));
        Assert.Null(unsized.PeakMemoryMb);
        Assert.Equal((2, 0), (probe.Begun, probe.Ended)); // the unsized job is not probed; the others not read
    }

    /// <summary>Property: over any interleaving of runs, a run gets the process's measure exactly when no other run overlapped it.</summary>
    [Fact]
    public void Only_runs_that_no_other_run_overlapped_are_measured()
    {
        var scripts =
            from runs in Gen.Choose(1, 6)
            from order in Gen.Shuffle(Enumerable.Range(0, runs).SelectMany(r => new[] { (Run: r, Start: true), (Run: r, Start: false) }).ToArray())
            select order;

        Prop.ForAll(Arb.From(scripts), script =>
        {
            // A run's end may not come before its start: swap each such pair into order.
            var events = script.ToList();
            for (var i = 0; i < events.Count; i++)
            {
                var end = events.FindIndex(e => e.Run == events[i].Run && !e.Start);
                var start = events.FindIndex(e => e.Run == events[i].Run && e.Start);
                if (end < start) (events[start], events[end]) = (events[end], events[start]);
            }

            var observer = new InProcessUsage(new CountingProbe());
            var open = new Dictionary<int, InProcessUsage.Observation>();
            var measured = new Dictionary<int, bool>();
            foreach (var (run, isStart) in events)
            {
                if (isStart) open[run] = observer.Begin(SizedJob(run));
                else measured[run] = open[run].Complete(new ResourceUsage(), TimeSpan.FromSeconds(1));
            }

            foreach (var run in measured.Keys)
            {
                var (from, to) = (events.IndexOf((run, true)), events.IndexOf((run, false)));
                var overlapped = measured.Keys.Any(other => other != run && events.IndexOf((other, true)) < to && events.IndexOf((other, false)) > from);
                if (measured[run] == overlapped) return false;
            }

            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(500));
    }

    [Fact]
    public void The_probe_reads_the_peak_of_the_process_during_the_observation()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.IsType<NoProbe>(LinuxProcessProbe.ForThisSystem());
            return;
        }

        var probe = LinuxProcessProbe.ForThisSystem();
        var mark = probe.Begin();
        Assert.NotNull(mark);
        var block = Touched(400);
        var used = probe.End(mark, TimeSpan.FromSeconds(1));
        GC.KeepAlive(block);

        Assert.NotNull(used);
        Assert.InRange(used.PeakMemoryMb, 400, 64_000); // the 400 MB were resident at once, the runtime besides
    }

    [Fact]
    public void The_probe_parses_the_status_fields_as_the_kernel_writes_them()
    {
        var dir = Directory.CreateTempSubdirectory("proc-self-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "clear_refs"), "");
            File.WriteAllText(Path.Combine(dir, "status"), "Name:\tdotnet\nVmHWM:\t  514048 kB\nVmRSS:\t    2048 kB\n");
            var probe = new LinuxProcessProbe(dir);

            var mark = probe.Begin();

            Assert.Equal(2048, mark!.ResidentKb);
            Assert.Equal("5", File.ReadAllText(Path.Combine(dir, "clear_refs"))); // the reset was written
            Assert.Equal(502, probe.End(mark, TimeSpan.FromSeconds(1))!.PeakMemoryMb); // 514,048 kB
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Without_the_process_files_the_probe_observes_nothing()
    {
        var probe = new LinuxProcessProbe(Path.Combine(Path.GetTempPath(), $"no-proc-{Guid.NewGuid():N}"));
        Assert.Null(probe.Begin());
        Assert.Null(probe.End(new ProcessMark(1, TimeSpan.Zero), TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task A_host_records_what_a_sized_in_process_job_used_when_its_handler_reports_nothing()
    {
        var history = new InMemoryRunHistory();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IRunHistoryStore>(history);
        builder.Services.AddScheduling(s => s
            .Configure(o => o.AddQueue("default", concurrency: 1))
            .AddHandler<int>("load", (ctx, _) =>
            {
                GC.KeepAlive(Touched(ctx.Payload)); // reports nothing
                return Task.CompletedTask;
            }));
        using var host = builder.Build();
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();

        await queue.EnqueueAsync(new JobRequest("load", 400) { Command = "load 400", Definition = new JobDefinition("load", 2_000, 1_000, 0) });
        await Eventually.HoldsAsync(() => history.Runs.Count == 1, "the run is recorded");
        await host.StopAsync();

        Assert.InRange(history.Runs[0].PeakMemoryMb, 400, 64_000);
    }

    private static byte[][] Touched(int megabytes)
    {
        var block = new byte[megabytes][];
        for (var i = 0; i < megabytes; i++)
        {
            block[i] = new byte[1024 * 1024];
            for (var page = 0; page < block[i].Length; page += 4096) block[i][page] = 1;
        }

        return block;
    }
}
