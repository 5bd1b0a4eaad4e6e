using Microsoft.Extensions.DependencyInjection;

namespace Scheduling.Internal;

/// <summary>Prepares a store before workers use it (e.g. applies migrations).</summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public interface IJobQueueInitializer
{
    /// <summary>Prepares the store; the host retries with a backoff until it succeeds or stops.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);
}

/// <summary>How a store package replaces the in-memory defaults of <c>AddScheduling</c>.</summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class StoreRegistration
{
    /// <summary>Removes the default in-memory queue and run history so a store extension can register its own.</summary>
    public static void RemoveDefaultQueue(this IServiceCollection services)
    {
        for (var i = services.Count - 1; i >= 0; i--)
        {
            var d = services[i];
            if ((d.ServiceType == typeof(IJobQueue) && d.ImplementationFactory == (object)SchedulingServiceCollectionExtensions.InMemoryQueueFactory)
                || ((d.ServiceType == typeof(IResourceEstimator) || d.ServiceType == typeof(IRunHistoryStore)) && d.ImplementationFactory == (object)SchedulingServiceCollectionExtensions.InMemoryHistoryFactory))
                services.RemoveAt(i);
        }
    }
}
