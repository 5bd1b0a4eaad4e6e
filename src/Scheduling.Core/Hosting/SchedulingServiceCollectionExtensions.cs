using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Scheduling.Hosting;

namespace Scheduling;

/// <summary>Registers Scheduling in a host.</summary>
public static class SchedulingServiceCollectionExtensions
{
    // The default queue's factory: UsePostgres (or another store) recognises and replaces it.
    internal static readonly Func<IServiceProvider, object> InMemoryQueueFactory = static sp =>
        new InMemoryJobQueue(
            sp.GetRequiredService<IOptions<SchedulingOptions>>().Value.Queue,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<QueueSignals>(),
            null,
            sp.GetRequiredService<ResourceAllocator>(),
            sp.GetRequiredService<IRunHistoryStore>());

    // The worker side of whatever store serves as the queue: every store implements both interfaces.
    internal static readonly Func<IServiceProvider, object> WorkerStoreFactory = static sp =>
    {
        var queue = sp.GetRequiredService<IJobQueue>();
        return queue as IJobWorkerStore ?? throw new InvalidOperationException(
            $"The registered {nameof(IJobQueue)} ({queue.GetType().FullName}) does not implement {nameof(IJobWorkerStore)}, which the worker host needs. " +
            $"Register an {nameof(IJobWorkerStore)} too, or set {nameof(SchedulingOptions)}.{nameof(SchedulingOptions.RunWorkers)} to false on hosts that only enqueue.");
    };

    // The default run history and estimator (in memory); a store extension recognises and replaces them.
    internal static readonly Func<IServiceProvider, object> InMemoryHistoryFactory = static sp => sp.GetRequiredService<InMemoryRunHistory>();

    /// <summary>
    /// Adds the job queue (in memory until a store such as <c>UsePostgres</c> is chosen), options
    /// (bound from the <c>Scheduling</c> configuration section when the host has one, then
    /// <see cref="SchedulingBuilder.Configure"/>; validated at start-up) and the worker host. Calling it again only applies <paramref name="configure"/>.
    /// An <see cref="IJobQueue"/> registered by the application is kept.
    /// </summary>
    public static SchedulingBuilder AddScheduling(this IServiceCollection services, Action<SchedulingBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.AddBoundOptions<SchedulingOptions>(SchedulingOptions.Section, static (section, options) => section.Bind(options));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SchedulingOptions>, SchedulingOptionsValidator>());
        services.TryAddSingleton<QueueSignals>();
        services.TryAddSingleton<WorkerStatus>();
        services.TryAddSingleton(sp => new SchedulingHealthCheck(
            sp.GetRequiredService<IJobQueue>(), sp.GetRequiredService<IOptions<SchedulingOptions>>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<WorkerStatus>()));
        services.TryAddSingleton<JobHandlerRegistry>();
        services.TryAddSingleton(sp => new Scheduling.Internal.RegisteredHandlerKinds(sp.GetRequiredService<JobHandlerRegistry>().Kinds));
        services.TryAddSingleton(sp => new Scheduling.Internal.JobExecutor(
            sp.GetRequiredService<JobHandlerRegistry>(), sp, sp.GetRequiredService<IOptions<SchedulingOptions>>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetServices<JobMiddlewareRegistration>(), new PayloadUpgrades(sp.GetServices<PayloadUpgradeRegistration>())));
        services.TryAddSingleton<ICommandHasher>(Md5CommandHasher.Instance);
        services.TryAddSingleton(sp => new InMemoryRunHistory(sp.GetRequiredService<IOptions<SchedulingOptions>>().Value.Ara, sp.GetRequiredService<TimeProvider>()));
        services.TryAdd(ServiceDescriptor.Singleton(typeof(IResourceEstimator), InMemoryHistoryFactory));
        services.TryAdd(ServiceDescriptor.Singleton(typeof(IRunHistoryStore), InMemoryHistoryFactory));
        services.TryAddSingleton(sp => new ResourceAllocator(
            sp.GetRequiredService<IResourceEstimator>(),
            sp.GetRequiredService<ICommandHasher>(),
            sp.GetRequiredService<IOptions<SchedulingOptions>>().Value.Ara,
            sp.GetService<Microsoft.Extensions.Logging.ILogger<ResourceAllocator>>()));
        services.TryAdd(ServiceDescriptor.Singleton(typeof(IJobQueue), InMemoryQueueFactory));
        services.TryAdd(ServiceDescriptor.Singleton(typeof(IJobWorkerStore), WorkerStoreFactory));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, WorkerHost>());

        var builder = new SchedulingBuilder(services);
        configure?.Invoke(builder);
        return builder;
    }
}
