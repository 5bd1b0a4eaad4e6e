using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Scheduling.Hosting;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Core.Tests.Hosting.Roles;

/// <summary>The loop skeleton every maintenance service shares.</summary>
public sealed class PeriodicServiceTests
{
    [Fact]
    public async Task A_failing_round_is_reported_and_the_loop_goes_on_until_stopped()
    {
        using var stop = new CancellationTokenSource();
        var service = new Scripted(TimeProvider.System, round => round % 2 == 1 ? throw new TimeoutException($"round {round}") : Task.CompletedTask);
        var loop = service.RunAsync(stop.Token);

        await Eventually.HoldsAsync(() => service.Rounds >= 6, "six rounds ran");
        await stop.CancelAsync();
        await loop.WaitAsync(TimeSpan.FromSeconds(30)); // ends without throwing

        Assert.True(service.Failures.Count >= 3);
        Assert.All(service.Failures, f => Assert.IsType<TimeoutException>(f.Error));
        Assert.All(service.Failures, f => Assert.Equal(TimeSpan.FromMilliseconds(2), f.RetryIn));
    }

    [Fact]
    public async Task The_rescuer_wakes_the_fetch_loops_after_rescuing_and_not_otherwise()
    {
        var signals = new QueueSignals();
        var rescued = new Queue<int>([0, 4]);
        var rescuer = new LeaseRescuer(new FakeStore { OnRescue = rescued.Dequeue }, new SchedulingOptions(), signals, TimeProvider.System, NullLogger.Instance);

        var idle = signals.WaitAsync("q", TimeSpan.FromMinutes(5), CancellationToken.None);
        await rescuer.RunOnceAsync(CancellationToken.None);
        Assert.False(idle.IsCompleted);
        await rescuer.RunOnceAsync(CancellationToken.None);

        await idle.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(rescued);
    }

    private sealed class Scripted(TimeProvider time, Func<int, Task> round) : PeriodicService(time, NullLogger.Instance)
    {
        private int _rounds;

        public int Rounds => Volatile.Read(ref _rounds);
        public List<(Exception Error, TimeSpan RetryIn)> Failures { get; } = [];

        protected override TimeSpan Interval => TimeSpan.FromMilliseconds(1);

        protected override TimeSpan DelayAfterFailure(int failures) => TimeSpan.FromMilliseconds(2);

        public override Task RunOnceAsync(CancellationToken cancellationToken) => round(Interlocked.Increment(ref _rounds));

        protected override void OnFailure(Exception exception, TimeSpan retryIn)
        {
            lock (Failures) Failures.Add((exception, retryIn));
        }
    }
}
