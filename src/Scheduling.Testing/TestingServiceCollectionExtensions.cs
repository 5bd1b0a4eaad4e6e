using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;
using Scheduling.Internal;

namespace Scheduling.Testing;

/// <summary>How jobs run in a test host.</summary>
public enum TestingMode
{
    /// <summary>Nothing runs until the test calls <see cref="TestJobRunner.RunPendingAsync"/>.</summary>
    Manual = 0,

    /// <summary>Each enqueue runs what it made due (and what that enqueues) before it returns.</summary>
    Inline = 1,
}

/// <summary>Turns a host's Scheduling into a test double: no background workers, a fake clock, jobs run on request or inline.</summary>
public static class TestingServiceCollectionExtensions
{
    /// <summary>
    /// For tests: the worker host's background loops are off, the clock is a
    /// <see cref="FakeTimeProvider"/> (kept when the test registered one as its <see cref="TimeProvider"/>;
    /// resolve it as <see cref="FakeTimeProvider"/> to move it), and a <see cref="TestJobRunner"/> runs
    /// jobs with the host's handlers: when the test asks (<see cref="TestingMode.Manual"/>), or inside
    /// each enqueue (<see cref="TestingMode.Inline"/>). Call it after choosing the store (<c>UsePostgres</c>):
    /// inline mode wraps the queue registered at that point.
    /// </summary>
    public static SchedulingBuilder UseTesting(this SchedulingBuilder builder, TestingMode mode = TestingMode.Manual)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, $"Unknown testing mode {(int)mode}.");
        var services = builder.Services;
        builder.Configure(o => o.RunWorkers = false);

        var registered = services.LastOrDefault(d => d.ServiceType == typeof(TimeProvider));
        var fake = registered?.ImplementationInstance as FakeTimeProvider ?? new FakeTimeProvider();
        services.Replace(ServiceDescriptor.Singleton<TimeProvider>(fake));
        services.TryAddSingleton(fake);
        services.TryAddSingleton(sp => new TestJobRunner(
            sp.GetRequiredService<IJobQueue>(), sp.GetRequiredService<IJobWorkerStore>(), sp.GetRequiredService<JobExecutor>(), sp.GetRequiredService<TimeProvider>()));

        if (mode == TestingMode.Inline)
        {
            var queue = services.Last(d => d.ServiceType == typeof(IJobQueue));
            services.AddSingleton(sp => new InlineJobQueue.Inner(Create(queue, sp)));
            services.RemoveAll<IJobQueue>();
            services.RemoveAll<IJobWorkerStore>();
            services.AddSingleton<IJobQueue>(sp => new InlineJobQueue(sp.GetRequiredService<InlineJobQueue.Inner>().Queue, () => sp.GetRequiredService<TestJobRunner>()));
            // The worker side is the wrapped store's own (every store implements both sides).
            services.AddSingleton(sp => sp.GetRequiredService<InlineJobQueue.Inner>().Queue as IJobWorkerStore
                ?? throw new InvalidOperationException($"The queue {sp.GetRequiredService<InlineJobQueue.Inner>().Queue.GetType().FullName} has no worker side ({nameof(IJobWorkerStore)}), which the test runner needs."));
        }

        return builder;
    }

    /// <summary>The queue <paramref name="descriptor"/> registers, made as the container would.</summary>
    private static IJobQueue Create(ServiceDescriptor descriptor, IServiceProvider services) => descriptor switch
    {
        { ImplementationInstance: IJobQueue instance } => instance,
        { ImplementationFactory: { } factory } => (IJobQueue)factory(services),
        { ImplementationType: { } type } => (IJobQueue)ActivatorUtilities.CreateInstance(services, type),
        _ => throw new InvalidOperationException("The registered IJobQueue cannot be wrapped for inline mode (a keyed registration?)."),
    };
}
