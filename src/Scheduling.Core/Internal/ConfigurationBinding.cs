using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Scheduling.Internal;

/// <summary>
/// The one options convention of the library's packages: each options class is bound from its
/// configuration section (<c>Scheduling</c>, <c>Scheduling:Postgres</c>, <c>Scheduling:Stagger</c>; so
/// environment variables such as <c>Scheduling__Postgres__Schema</c> work) when the host has an
/// <see cref="IConfiguration"/>, before any code configuration, and validated at start-up.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class ConfigurationBinding
{
    /// <summary>Binds <typeparamref name="TOptions"/> from <paramref name="section"/> and validates it at start-up; calling it again changes nothing.</summary>
    public static OptionsBuilder<TOptions> AddBoundOptions<TOptions>(this IServiceCollection services, string section) where TOptions : class
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<TOptions>, SectionBinder<TOptions>>(sp => new SectionBinder<TOptions>(sp, section)));
        return services.AddOptions<TOptions>().ValidateOnStart();
    }

    private sealed class SectionBinder<TOptions>(IServiceProvider services, string section) : IConfigureOptions<TOptions> where TOptions : class
    {
        public void Configure(TOptions options)
        {
            if (services.GetService<IConfiguration>() is { } configuration) configuration.GetSection(section).Bind(options);
        }
    }
}
