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
    /// Registers the stagger policy (options bound from <c>Scheduling:Stagger</c> when the host has
    /// configuration, then <paramref name="configure"/>, validated at start-up) and the recurring scheduler.
    /// </summary>
    public static SchedulingBuilder UseStagger(this SchedulingBuilder builder, Action<StaggerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddBoundOptions<StaggerOptions>(StaggerOptions.Section);
        if (configure is not null) services.PostConfigure(configure);
        services.AddOptions<RecurringJobOptions>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StaggerOptions>, StaggerOptionsValidator>());
        services.TryAddSingleton<IStaggerPolicy>(sp => new StaggerPolicy(
            sp.GetRequiredService<IOptions<StaggerOptions>>().Value,
            sp.GetRequiredService<IOptions<RecurringJobOptions>>().Value.Jobs.Select(j => j.ToStaggerJob()),
            sp.GetService<ILogger<StaggerPolicy>>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, RecurringJobScheduler>());
        return builder;
    }

    /// <summary>Registers a recurring job: at each tick of <paramref name="cron"/> (staggered), <paramref name="template"/> is enqueued once.</summary>
    public static SchedulingBuilder AddRecurringJob(this SchedulingBuilder builder, string name, string cron, JobRequest template, Action<RecurringJob>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var job = new RecurringJob(name, cron, template);
        configure?.Invoke(job);
        builder.UseStagger();
        builder.Services.Configure<RecurringJobOptions>(o => o.Jobs.Add(job));
        return builder;
    }
}
