using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Scheduling.Hosting;
using Xunit;

namespace Scheduling.Core.Tests.Hosting.Roles;

/// <summary>Attempt timeouts on a fake clock: the runner fails the attempt at the deadline, the lease keeper lets go of a handler that ignores it.</summary>
public sealed class TimeoutTests
{
    private static (JobRunner Runner, RunningJobs Running) Runner(FakeTimeProvider time, SchedulingOptions options, Func<JobContext<string>, CancellationToken, Task> handler)
    {
        var services = new ServiceCollection().BuildServiceProvider();
        var registry = new JobHandlerRegistry([JobHandlerRegistry.ForDelegate("slow", handler)]);
        var running = new RunningJobs();
        var executor = new Scheduling.Internal.JobExecutor(registry, services, Microsoft.Extensions.Options.Options.Create(options), time);
        return (new JobRunner(executor, options, running, "w", time, NullLogger.Instance, new JobFailureLog(NullLogger.Instance, time)), running);
    }

    private static RunningJob Holding(RunningJobs running, TimeSpan? jobTimeout = null)
    {
        var holding = new RunningJob(FakeStore.Job(1) with { Kind = "slow", PayloadJson = "\"x\"", Timeout = jobTimeout }, null);
        running.Add(holding);
        return holding;
    }

    [Fact]
    public async Task A_handler_that_honours_its_token_fails_the_attempt_at_the_deadline_with_a_timeout_error()
    {
        var time = new FakeTimeProvider();
        var options = new SchedulingOptions { DefaultJobTimeout = TimeSpan.FromMinutes(10) };
        options.JobTimeouts["slow"] = TimeSpan.FromSeconds(30);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (runner, running) = Runner(time, options, async (_, ct) => { entered.SetResult(); await new TaskCompletionSource().Task.WaitAsync(ct); });
        var holding = Holding(running, jobTimeout: TimeSpan.FromSeconds(5)); // the job's own wins over its kind's and the default

        var run = runner.RunAsync(holding, new PrefetchSizing(new QueueWorkerOptions()));
        await entered.Task;
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(run.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        var ack = await run;

        Assert.Equal(JobAckKind.Failed, ack!.Value.Kind);
        Assert.True(ack.Value.Retryable);
        Assert.StartsWith("The attempt timed out after 5 s", ack.Value.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Without_its_own_timeout_a_job_takes_its_kinds_and_then_the_hosts_default(bool byKind)
    {
        var time = new FakeTimeProvider();
        var options = new SchedulingOptions { DefaultJobTimeout = TimeSpan.FromSeconds(90) };
        if (byKind) options.JobTimeouts["slow"] = TimeSpan.FromSeconds(20);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (runner, running) = Runner(time, options, async (_, ct) => { entered.SetResult(); await new TaskCompletionSource().Task.WaitAsync(ct); });

        var run = runner.RunAsync(Holding(running), new PrefetchSizing(new QueueWorkerOptions()));
        await entered.Task;
        time.Advance(TimeSpan.FromSeconds(byKind ? 20 : 90));
        var ack = await run;

        Assert.StartsWith($"The attempt timed out after {(byKind ? 20 : 90)} s", ack!.Value.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_job_without_any_timeout_is_never_stopped_by_the_clock()
    {
        var time = new FakeTimeProvider();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (runner, running) = Runner(time, new SchedulingOptions(), async (_, ct) => await release.Task.WaitAsync(ct));

        var run = runner.RunAsync(Holding(running), new PrefetchSizing(new QueueWorkerOptions()));
        time.Advance(TimeSpan.FromDays(30));
        Assert.False(run.IsCompleted);
        release.SetResult();

        Assert.Equal(JobAckKind.Succeeded, (await run)!.Value.Kind);
    }

    [Fact]
    public async Task A_handler_that_ignores_its_token_keeps_its_lease_for_the_grace_only_and_then_it_runs_out()
    {
        var time = new FakeTimeProvider();
        var options = new SchedulingOptions { TimeoutGrace = TimeSpan.FromSeconds(30) };
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (runner, running) = Runner(time, options, async (_, _) => { entered.SetResult(); await release.Task; }); // never looks at its token
        var holding = Holding(running, jobTimeout: TimeSpan.FromSeconds(10));
        var heartbeats = new List<int>();
        var store = new FakeStore { OnHeartbeat = leases => { heartbeats.Add(leases.Count); return leases.Select(l => new HeldLease(l.JobId, l.Token, false)).ToArray(); } };
        var keeper = new LeaseKeeper(store, running, "w", options, time, NullLogger.Instance);

        var run = runner.RunAsync(holding, new PrefetchSizing(new QueueWorkerOptions()));
        await entered.Task;
        await keeper.RunOnceAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(10)); // the deadline: its token is cancelled, it goes on
        await keeper.RunOnceAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(29));
        await keeper.RunOnceAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(1)); // past the grace: the lease is left to run out
        await keeper.RunOnceAsync(CancellationToken.None);
        await keeper.RunOnceAsync(CancellationToken.None);

        Assert.Equal([1, 1, 1], heartbeats);
        Assert.Equal(StopReason.TimedOut, holding.StopReason);
        Assert.Equal(1, running.Count); // its slot stays taken while its code runs
        Assert.False(run.IsCompleted);
        release.SetResult();
        Assert.Equal(JobAckKind.Succeeded, (await run)!.Value.Kind); // the store refuses it if the job was rescued meanwhile (a stale lease)
        Assert.Equal(0, running.Count);
    }
}
