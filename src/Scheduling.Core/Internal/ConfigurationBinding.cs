using System.Diagnostics.CodeAnalysis;
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
    /// <summary>
    /// Binds <typeparamref name="TOptions"/> from <paramref name="section"/> with <paramref name="bind"/>
    /// and validates it at start-up; calling it again changes nothing. The caller binds (<c>(c, o) =&gt; c.Bind(o)</c>)
    /// where the options type is concrete, so the configuration binding source generator writes the
    /// binding instead of reflection (trim- and AOT-safe).
    /// </summary>
    public static OptionsBuilder<TOptions> AddBoundOptions<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions>(
        this IServiceCollection services, string section, Action<IConfiguration, TOptions> bind) where TOptions : class
    {
        ArgumentNullException.ThrowIfNull(bind);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<TOptions>, SectionBinder<TOptions>>(sp => new SectionBinder<TOptions>(sp, section, bind)));
        return services.AddOptions<TOptions>().ValidateOnStart();
    }

    private sealed class SectionBinder<TOptions>(IServiceProvider services, string section, Action<IConfiguration, TOptions> bind) : IConfigureOptions<TOptions> where TOptions : class
    {
        public void Configure(TOptions options)
        {
            if (services.GetService<IConfiguration>() is { } configuration) bind(configuration.GetSection(section), options);
        }
    }
}

/// <summary>
/// Words the failures of a generated options validator (<c>[OptionsValidator]</c> over the
/// <c>[Range]</c> attributes, where each range is stated once) by configuration key, the way the
/// hand-written rules are: "Scheduling:Queue:MaxErrorsKept must be between 1 and 1000.".
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class GeneratedValidation
{
    /// <summary>Adds the failures of <paramref name="result"/> (validated with <paramref name="section"/> as its name) to <paramref name="errors"/>.</summary>
    public static void AddFailures(ValidateOptionsResult result, string section, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(errors);
        if (!result.Failed || result.Failures is null) return;
        foreach (var failure in result.Failures) errors.Add(Reword(failure, section));
    }

    // The generator writes "Member: The field {section}.Member.Sub must ..." and "Member: The {section}.Member field is required.".
    internal static string Reword(string failure, string section)
    {
        var at = failure.IndexOf(": The ", StringComparison.Ordinal);
        if (at < 0) return failure;
        var message = failure[(at + 2)..];
        foreach (var (lead, tail) in new[] { ("The field ", " "), ("The ", " field ") })
        {
            var start = lead + section + ".";
            if (!message.StartsWith(start, StringComparison.Ordinal)) continue;
            var end = message.IndexOf(tail, start.Length, StringComparison.Ordinal);
            if (end < 0) continue;
            var member = message[start.Length..end].Replace('.', ':').Replace('[', ':').Replace("]", "", StringComparison.Ordinal);
            return $"{section}:{member} {message[(end + tail.Length)..]}";
        }

        return failure;
    }
}
