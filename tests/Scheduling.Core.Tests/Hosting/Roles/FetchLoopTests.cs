using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Scheduling.Hosting;
using Xunit;

namespace Scheduling.Core.Tests.Hosting.Roles;

/// <summary>The producer (<see cref="FetchLoop"/>) against a fake store.</summary>
public sealed class FetchLoopTests
{
    [Fact]
    public async Task An_acquisition_in_flight_at_shutdown_is_answered_and_what_it_leased_is_given_back_at_once()
    {
        var queue = $"inflight-{Guid.NewGuid():N}";
        var acquiring = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var leased = Enumerable.Range(1, 3).Select(i => FakeStore.Job(i, queue)).ToArray();
        var store = new FakeStore
        {
            // The statement has committed; its reply comes after the host stopped. A caller that cancels
            // meanwhile never hears of the leases (as with a real client, the wait honours the token).
            OnAcquire = async (_, ct) =>
            {
                acquiring.TrySetResult();
                await answer.Task.WaitAsync(ct);
                return leased;
            },
            OnAcknowledge = acks => acks.Select(a => new AckResult(a.Lease.JobId, true, JobState.Available)).ToArray(),
        };
        var options = new SchedulingOptions();
        options.AddQueue(queue, concurrency: 1);
        var running = new RunningJobs();
        var acks = new AckWriter(store, options, TimeProvider.System, NullLogger.Instance);
        using var services = new ServiceCollection().BuildServiceProvider();
        var runner = new JobRunner(new Scheduling.Internal.JobExecutor(new JobHandlerRegistry([]), services, Microsoft.Extensions.Options.Options.Create(options), TimeProvider.System), options, running, "w", TimeProvider.System, NullLogger.Instance, new JobFailureLog(NullLogger.Instance, TimeProvider.System));
        var loop = new FetchLoop(options.EffectiveWork[0], store, runner, acks, running, new QueueSignals(), new WorkerStatus(), options, "w", TimeProvider.System, NullLogger.Instance, new HostCapacity(null, running));
        using var stop = new CancellationTokenSource();

        var tasks = loop.Start(stop.Token);
        await acquiring.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        answer.SetResult();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));

        var released = store.Acknowledged.SelectMany(b => b).Where(a => a.Kind == JobAckKind.Released).Select(a => a.Lease).ToArray();
        Assert.Equal(leased.Select(j => j.Lease).OrderBy(l => l.JobId), released.OrderBy(l => l.JobId));
        Assert.True(running.IsEmpty);
    }
}
