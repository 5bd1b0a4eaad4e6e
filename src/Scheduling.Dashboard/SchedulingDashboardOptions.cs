namespace Scheduling.Dashboard;

/// <summary>How the dashboard is shown and who may use it (<see cref="SchedulingDashboardExtensions.AddSchedulingDashboard"/>).</summary>
public sealed class SchedulingDashboardOptions
{
    /// <summary>The configuration section these options are bound from.</summary>
    public const string Section = "Scheduling:Dashboard";

    /// <summary>
    /// The authorization policy (registered by the app) a user must satisfy. Outside the Development
    /// environment the dashboard refuses every request until one is named (or <see cref="AllowAnonymous"/> is set).
    /// </summary>
    public string? AuthorizationPolicy { get; set; }

    /// <summary>Serve without authorization in any environment (a loopback-only tool, say). Default false.</summary>
    public bool AllowAnonymous { get; set; }

    /// <summary>Show everything, change nothing: the action buttons are gone and every action is refused. Default false.</summary>
    public bool ReadOnly { get; set; }

    /// <summary>
    /// A link to the app's tracing UI for a job's trace, with <c>{traceId}</c> where the trace id goes
    /// (e.g. <c>https://jaeger.example/trace/{traceId}</c>); null shows the id without a link. Must be http(s).
    /// </summary>
    public string? TraceLinkTemplate { get; set; }

    /// <summary>How long queue counts are reused between refreshes, for every viewer at once (default 5 s).</summary>
    public TimeSpan StatsCacheDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The most characters of a payload, result or error shown (default 20,000); the rest is cut with a note.</summary>
    public int DisplayLimit { get; set; } = 20_000;

    /// <summary>The most jobs one bulk action changes (default 1,000); narrow the filter for more.</summary>
    public int BulkLimit { get; set; } = 1_000;

    /// <summary>
    /// How many job ids one page of a search looks through when its filter is one no index serves (a kind,
    /// an error's text, a time window, a state other than dead or running; default 100,000): a page costs at
    /// most that walk, and "search older" goes on below it. A unique key, the dead or the running state is searched in full.
    /// </summary>
    public int SearchWindow { get; set; } = 100_000;

    internal IEnumerable<string> Problems()
    {
        if (TraceLinkTemplate is { } template)
        {
            if (!template.Contains("{traceId}", StringComparison.Ordinal))
                yield return $"TraceLinkTemplate must contain {{traceId}} (was '{template}').";
            if (!template.StartsWith("https://", StringComparison.OrdinalIgnoreCase) && !template.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
                yield return $"TraceLinkTemplate must be an http or https address (was '{template}').";
        }

        if (AuthorizationPolicy is not null && string.IsNullOrWhiteSpace(AuthorizationPolicy))
            yield return "AuthorizationPolicy must name a policy, or be null.";
        if (StatsCacheDuration < TimeSpan.FromSeconds(1) || StatsCacheDuration > TimeSpan.FromMinutes(10))
            yield return $"StatsCacheDuration must be between 1 second and 10 minutes (was {StatsCacheDuration}).";
        if (DisplayLimit is < 100 or > 1_000_000)
            yield return $"DisplayLimit must be between 100 and 1,000,000 characters (was {DisplayLimit}).";
        if (BulkLimit is < 1 or > 100_000)
            yield return $"BulkLimit must be between 1 and 100,000 jobs (was {BulkLimit}).";
        if (SearchWindow is < 1_000 or > 100_000_000)
            yield return $"SearchWindow must be between 1,000 and 100,000,000 ids (was {SearchWindow}).";
    }
}

/// <summary>Checks the dashboard's options at start-up, naming each wrong setting.</summary>
internal sealed class DashboardOptionsValidator : Microsoft.Extensions.Options.IValidateOptions<SchedulingDashboardOptions>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, SchedulingDashboardOptions options)
    {
        var problems = options.Problems().Select(p => $"{SchedulingDashboardOptions.Section}:{p}").ToArray();
        return problems.Length == 0 ? Microsoft.Extensions.Options.ValidateOptionsResult.Success : Microsoft.Extensions.Options.ValidateOptionsResult.Fail(problems);
    }
}
