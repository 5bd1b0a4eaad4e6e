using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Scheduling;

/// <summary>Configures Scheduling on a service collection; returned by <see cref="SchedulingServiceCollectionExtensions.AddScheduling"/>.</summary>
public sealed class SchedulingBuilder
{
    internal SchedulingBuilder(IServiceCollection services) => Services = services;

    /// <summary>The service collection, for extensions such as <c>UsePostgres</c>.</summary>
    public IServiceCollection Services { get; }

    /// <summary>Changes the options (queues, leases, retries, ...).</summary>
    public SchedulingBuilder Configure(Action<SchedulingOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        Services.Configure(configure);
        return this;
    }

    /// <summary>Runs jobs of <paramref name="kind"/> with <typeparamref name="THandler"/>, resolved in a new scope per job.</summary>
    public SchedulingBuilder AddHandler<[DynamicallyAccessedMembers(JobHandlerRegistry.HandlerMembers)] THandler, TPayload>(string kind)
        where THandler : class, IJobHandler<TPayload>
    {
        JobValidation.ValidateKind(kind, nameof(kind));
        Services.AddScoped<THandler>();
        Services.AddSingleton(JobHandlerRegistry.ForType<THandler, TPayload>(kind));
        return this;
    }

    /// <summary>
    /// Runs <typeparamref name="TMiddleware"/> around every job's execution (<see cref="IJobMiddleware"/>),
    /// resolved from the attempt's scope; middleware run in registration order, the first outermost.
    /// </summary>
    public SchedulingBuilder UseMiddleware<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TMiddleware>()
        where TMiddleware : class, IJobMiddleware
    {
        Services.AddScoped<TMiddleware>();
        Services.AddSingleton(new JobMiddlewareRegistration((context, next) => context.Services.GetRequiredService<TMiddleware>().InvokeAsync(context, next)));
        return this;
    }

    /// <summary>
    /// Runs <typeparamref name="TMiddleware"/> (resolved once, a singleton) around every enqueue of the
    /// host's queue (<see cref="JobQueueOptions.EnqueueMiddleware"/>), in registration order, the first outermost.
    /// </summary>
    public SchedulingBuilder UseEnqueueMiddleware<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TMiddleware>()
        where TMiddleware : class, IEnqueueMiddleware
    {
        Services.TryAddSingleton<TMiddleware>();
        Services.AddSingleton<Microsoft.Extensions.Options.IConfigureOptions<SchedulingOptions>>(sp =>
            new Microsoft.Extensions.Options.ConfigureOptions<SchedulingOptions>(o => o.Queue.EnqueueMiddleware.Add((context, proceed) => sp.GetRequiredService<TMiddleware>().InvokeAsync(context, proceed))));
        return this;
    }

    /// <summary>Runs a delegate around every enqueue of the host's queue (<see cref="JobQueueOptions.EnqueueMiddleware"/>), in registration order, the first outermost.</summary>
    public SchedulingBuilder UseEnqueueMiddleware(Func<EnqueueContext, Func<Task>, Task> middleware)
    {
        ArgumentNullException.ThrowIfNull(middleware);
        Services.Configure<SchedulingOptions>(o => o.Queue.EnqueueMiddleware.Add(middleware));
        return this;
    }

    /// <summary>
    /// Serialises payloads and results with <paramref name="options"/> (<see cref="JobQueueOptions.UseJsonSerializerOptions"/>):
    /// for a trimmed or native AOT host, options whose <c>TypeInfoResolver</c> is a source-generated
    /// context naming every payload and result type.
    /// </summary>
    public SchedulingBuilder UseJsonSerializerOptions(System.Text.Json.JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Services.Configure<SchedulingOptions>(o => o.Queue.UseJsonSerializerOptions(options));
        return this;
    }

    /// <summary>Runs a delegate around every job's execution (<see cref="IJobMiddleware"/>), in registration order.</summary>
    public SchedulingBuilder UseMiddleware(Func<JobExecutingContext, Func<Task>, Task> middleware)
    {
        ArgumentNullException.ThrowIfNull(middleware);
        Services.AddSingleton(new JobMiddlewareRegistration(middleware));
        return this;
    }

    /// <summary>
    /// Registers the step that upgrades a payload of <paramref name="kind"/> from version
    /// <paramref name="fromVersion"/> to the next (<see cref="JobRequest.PayloadVersion"/>). Before a
    /// handler reads a payload older than the newest version the steps reach, the steps run in order
    /// on its JSON, so a job enqueued by an older deploy is read by the newer handler. A job whose
    /// version has no step fails permanently, naming it; one newer than this host knows is retried
    /// (a newer host may take it).
    /// </summary>
    public SchedulingBuilder AddPayloadUpgrade(string kind, int fromVersion, Func<System.Text.Json.Nodes.JsonNode?, System.Text.Json.Nodes.JsonNode?> upgrade)
    {
        JobValidation.ValidateKind(kind, nameof(kind));
        ArgumentOutOfRangeException.ThrowIfNegative(fromVersion);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(fromVersion, (int)short.MaxValue);
        ArgumentNullException.ThrowIfNull(upgrade);
        Services.AddSingleton(new PayloadUpgradeRegistration(kind, fromVersion, upgrade));
        return this;
    }

    /// <summary>Runs jobs of <paramref name="kind"/> with a delegate.</summary>
    public SchedulingBuilder AddHandler<TPayload>(string kind, Func<JobContext<TPayload>, CancellationToken, Task> handler)
    {
        JobValidation.ValidateKind(kind, nameof(kind));
        ArgumentNullException.ThrowIfNull(handler);
        Services.AddSingleton(JobHandlerRegistry.ForDelegate(kind, handler));
        return this;
    }
}
