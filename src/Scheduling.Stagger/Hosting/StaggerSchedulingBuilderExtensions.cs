using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Scheduling.Stagger;

namespace Scheduling;

/// <summary>Adds staggering and recurring jobs to Scheduling.</summary>
public static class StaggerSchedulingBuilderExtensions
{
    /// <summary>
    /// Turns staggering on and registers the stagger policy and the recurring scheduler. Which wins:
    /// <paramref name="configure"/>, then the configuration's <c>Scheduling:Stagger:Enabled</c> (the
    /// switch to turn it off without a deploy), then this call's default, on. Without <c>UseStagger</c>
    /// recurring jobs run at their own cron times unless the configuration turns staggering on.
    /// Options are bound from <c>Scheduling:Stagger</c> and validated at start-up.
    /// </summary>
    public static SchedulingBuilder UseStagger(this SchedulingBuilder builder, Action<StaggerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        // Before the code's callback, so the callback wins over the default and the configuration.
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<StaggerOptions>, StaggerRequested>());
        AddRecurringScheduler(builder, configure);
        return builder;
    }

    /// <summary>The stagger policy and the recurring scheduler, without turning staggering on.</summary>
    private static void AddRecurringScheduler(SchedulingBuilder builder, Action<StaggerOptions>? configure)
    {
        var services = builder.Services;
        services.AddBoundOptions<StaggerOptions>(StaggerOptions.Section, static (section, options) => section.Bind(options));
        if (configure is not null) services.PostConfigure(configure);
        services.AddOptions<RecurringJobOptions>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StaggerOptions>, StaggerOptionsValidator>());
        services.TryAddSingleton<IStaggerPolicy>(sp => new StaggerPolicy(
            sp.GetRequiredService<IOptions<StaggerOptions>>().Value,
            sp.GetRequiredService<IOptions<RecurringJobOptions>>().Value.Jobs.Select(j => j.ToStaggerJob()),
            sp.GetService<ILogger<StaggerPolicy>>()));
        // Stored recurring jobs live with the queue when it keeps them (both of the library's queues do).
        services.TryAddSingleton(StoreOf);
        services.TryAddSingleton(sp => new RecurringJobManager(sp.GetRequiredService<IRecurringJobStore>()));
        // One scheduler: the hosted service, and the plan it shows (the dashboard's recurring jobs page).
        services.TryAddSingleton<RecurringJobScheduler>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, RecurringJobScheduler>(sp => sp.GetRequiredService<RecurringJobScheduler>()));
        services.TryAddSingleton<IRecurringJobsView>(sp => sp.GetRequiredService<RecurringJobScheduler>());
    }

    private static IRecurringJobStore StoreOf(IServiceProvider services)
    {
        if (services.GetService<IJobQueue>() is IRecurringJobStore store) return store;
        try
        {
            return services.GetService<IJobWorkerStore>() as IRecurringJobStore ?? NoRecurringJobStore.Instance; // a decorated queue's store
        }
        catch (InvalidOperationException)
        {
            return NoRecurringJobStore.Instance; // a client-only queue with no worker side
        }
    }

    /// <summary>Registers a recurring job: at each tick of <paramref name="cron"/> (staggered), <paramref name="template"/> is enqueued once.</summary>
    public static SchedulingBuilder AddRecurringJob(this SchedulingBuilder builder, string name, string cron, JobRequest template, Action<RecurringJob>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var job = new RecurringJob(name, cron, template);
        configure?.Invoke(job);
        AddRecurringScheduler(builder, null);
        builder.Services.Configure<RecurringJobOptions>(o => o.Jobs.Add(job));
        return builder;
    }
}

/// <summary>
/// UseStagger's default, on, unless the configuration sets <c>Scheduling:Stagger:Enabled</c>. Runs
/// before the code's own callbacks (registered by UseStagger as PostConfigure after this one), so those win.
/// </summary>
internal sealed class StaggerRequested(Microsoft.Extensions.Configuration.IConfiguration? configuration = null) : IPostConfigureOptions<StaggerOptions>
{
    public void PostConfigure(string? name, StaggerOptions options)
    {
        var flag = configuration?[$"{StaggerOptions.Section}:{nameof(StaggerOptions.Enabled)}"];
        options.Enabled = flag is null || !bool.TryParse(flag, out var configured) || configured;
    }
}
