using System.Globalization;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.Extensions.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Scheduling.Dashboard.Pages;

namespace Scheduling.Dashboard;

/// <summary>Registers and maps the scheduling dashboard.</summary>
public static class SchedulingDashboardExtensions
{
    /// <summary>
    /// Registers the dashboard's services (its options, bound from <see cref="SchedulingDashboardOptions.Section"/>
    /// and validated at start-up, anti-forgery, the shared statistics cache). Needs an <see cref="IJobQueue"/>
    /// (<c>services.AddScheduling(...)</c>).
    /// </summary>
    /// <param name="services">The app's services.</param>
    /// <param name="configure">Sets the options.</param>
    /// <returns>The services, for chaining.</returns>
    public static IServiceCollection AddSchedulingDashboard(this IServiceCollection services, Action<SchedulingDashboardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddBoundOptions<SchedulingDashboardOptions>(SchedulingDashboardOptions.Section, static (section, o) => section.Bind(o));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SchedulingDashboardOptions>, DashboardOptionsValidator>());
        if (configure is not null) options.Configure(configure);
        services.AddAntiforgery();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new DashboardStats(sp.GetRequiredService<IJobQueue>(), sp.GetRequiredService<IOptions<SchedulingDashboardOptions>>().Value, sp.GetRequiredService<TimeProvider>()));
        return services;
    }

    /// <summary>
    /// Maps the dashboard under <paramref name="prefix"/>. Outside the Development environment it answers
    /// 403 until <see cref="SchedulingDashboardOptions.AuthorizationPolicy"/> names a policy (then every page
    /// requires it: call <c>app.UseAuthentication()</c> and <c>app.UseAuthorization()</c>) or
    /// <see cref="SchedulingDashboardOptions.AllowAnonymous"/> is set. Actions are POSTs checked for anti-forgery
    /// and logged with the user's name.
    /// </summary>
    /// <param name="endpoints">The app.</param>
    /// <param name="prefix">Where the dashboard lives, e.g. <c>/scheduling</c>.</param>
    /// <returns>The group's builder, to add conventions.</returns>
    public static IEndpointConventionBuilder MapSchedulingDashboard(this IEndpointRouteBuilder endpoints, string prefix = "/scheduling")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (string.IsNullOrWhiteSpace(prefix) || !prefix.StartsWith('/'))
            throw new ArgumentException($"The dashboard's prefix must be a path starting with '/' (was '{prefix}').", nameof(prefix));
        var basePath = prefix.TrimEnd('/');
        var services = endpoints.ServiceProvider;
        var options = services.GetRequiredService<IOptions<SchedulingDashboardOptions>>().Value;
        var environment = services.GetService<IHostEnvironment>();
        var development = environment?.IsDevelopment() == true;
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Scheduling.Dashboard");

        var group = endpoints.MapGroup(basePath.Length == 0 ? "/" : basePath);
        if (options.AuthorizationPolicy is { } policy) group.RequireAuthorization(policy);
        var closed = options.AuthorizationPolicy is null && !options.AllowAnonymous && !development ? Closed(environment?.EnvironmentName) : null;
        var notice = options.AuthorizationPolicy is null ? (development && !options.AllowAnonymous ? "Open to anyone: this is the Development environment and no authorization policy is set." : "Open to anyone (AllowAnonymous).") : null;
        if (options.ReadOnly) notice = ((notice ?? "") + " Read-only: actions are off.").Trim();

        // Every endpoint goes through here: the security headers, and the refusal of a dashboard that
        // has no policy outside Development (RequestDelegate endpoints run no endpoint filters).
        RequestDelegate Guarded(RequestDelegate handler) => async http =>
        {
            var headers = http.Response.Headers;
            headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "same-origin";
            if (closed is not null) await WriteAsync(http, closed, StatusCodes.Status403Forbidden).ConfigureAwait(false);
            else await handler(http).ConfigureAwait(false);
        };

        PageContext Page(HttpContext http)
        {
            if (options.ReadOnly) return new PageContext(basePath, options, null, null, notice);
            var tokens = http.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(http);
            return new PageContext(basePath, options, tokens.FormFieldName, tokens.RequestToken, notice);
        }

        group.MapGet("/", Guarded(async http =>
        {
            var stats = await Stats(http).GetAsync(http.RequestAborted).ConfigureAwait(false);
            await WriteAsync(http, OverviewPage.Render(Page(http), stats, Done(http))).ConfigureAwait(false);
        }));
        group.MapGet("/fragments/queues", Guarded(async http =>
        {
            var stats = await Stats(http).GetAsync(http.RequestAborted).ConfigureAwait(false);
            await WriteAsync(http, OverviewPage.Queues(Page(http), stats)).ConfigureAwait(false); // with the forms' token: the refreshed table keeps its buttons
        }));
        group.MapGet("/hosts", Guarded(async http =>
        {
            var stats = await Stats(http).GetAsync(http.RequestAborted).ConfigureAwait(false);
            await WriteAsync(http, HostsPage.Render(Page(http), stats)).ConfigureAwait(false);
        }));
        group.MapGet("/recurring", Guarded(async http =>
        {
            var plan = http.RequestServices.GetService<IRecurringJobsView>()?.Current;
            var store = http.RequestServices.GetService<IRecurringJobStore>() ?? Queue(http) as IRecurringJobStore;
            var stored = store is null ? null : await store.ListRecurringJobsAsync(http.RequestAborted).ConfigureAwait(false);
            await WriteAsync(http, RecurringPage.Render(Page(http), plan, stored)).ConfigureAwait(false);
        }));
        group.MapGet("/ara", Guarded(async http =>
        {
            var text = http.Request.Query["days"].FirstOrDefault();
            var days = 7;
            if (!string.IsNullOrEmpty(text) && (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out days) || days is < 1 or > 30))
            {
                await WriteAsync(http, AraPage.Render(Page(http), null, 7, $"days: '{text}' is not a whole number from 1 to 30."), StatusCodes.Status400BadRequest).ConfigureAwait(false);
                return;
            }

            var source = http.RequestServices.GetService<IAraReportSource>() ?? Queue(http) as IAraReportSource;
            var ceiling = http.RequestServices.GetService<IOptions<SchedulingOptions>>()?.Value.Ara.CeilingMemoryMb ?? new AraOptions().CeilingMemoryMb;
            var now = http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
            var report = source is null ? null : await source.GetAraReportAsync(now.AddDays(-days), now, ceiling, http.RequestAborted).ConfigureAwait(false);
            await WriteAsync(http, AraPage.Render(Page(http), report, days, null)).ConfigureAwait(false);
        }));
        group.MapGet("/jobs", Guarded(async http =>
        {
            var problems = new List<string>();
            var filter = JobFilter.Parse(name => http.Request.Query[name].FirstOrDefault(), problems);
            if (problems.Count > 0)
            {
                await WriteAsync(http, JobsPage.Render(Page(http), filter, [], problems, Done(http)), StatusCodes.Status400BadRequest).ConfigureAwait(false);
                return;
            }

            var (jobs, searchedFrom) = await SearchAsync(Queue(http), filter, options.SearchWindow, http.RequestAborted).ConfigureAwait(false);
            await WriteAsync(http, JobsPage.Render(Page(http), filter, jobs, problems, Done(http), searchedFrom)).ConfigureAwait(false);
        }));
        group.MapGet("/jobs/{id:long}", Guarded(async http =>
        {
            var id = JobId(http);
            var job = await Queue(http).GetJobAsync(id, http.RequestAborted).ConfigureAwait(false);
            if (job is null)
            {
                await WriteAsync(http, Layout.Page(Page(http), "No such job", "Jobs", h => h.Element("p", $"There is no job {id} (it may have been purged after it finished).")), StatusCodes.Status404NotFound).ConfigureAwait(false);
                return;
            }

            var snapshot = await Stats(http).GetAsync(http.RequestAborted).ConfigureAwait(false);
            var now = http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
            var ahead = job.State == JobState.Available ? await Queue(http).CountAheadAsync(job.Id, WhyNotStarted.AheadCap, http.RequestAborted).ConfigureAwait(false) : null;
            var why = WhyNotStarted.Explain(job, snapshot.Queues.FirstOrDefault(q => q.Queue == job.Queue), snapshot.Hosts, now, ahead);
            await WriteAsync(http, JobPage.Render(Page(http), job, why, Done(http))).ConfigureAwait(false);
        }));

        group.MapPost("/jobs/{id:long}/cancel", Guarded(http =>
        {
            var id = JobId(http);
            return ActAsync(http, $"{basePath}/jobs/{id}", "cancel", [id], async () => Describe(await Queue(http).CancelAsync(id, http.RequestAborted).ConfigureAwait(false)));
        }));
        group.MapPost("/jobs/{id:long}/redrive", Guarded(http =>
        {
            var id = JobId(http);
            return ActAsync(http, $"{basePath}/jobs/{id}", "retry", [id], async () =>
                await Queue(http).RedriveAsync(id, http.RequestAborted).ConfigureAwait(false) ? "Retried: the job is due again with fresh attempts." : "Not retried: the job is not dead.");
        }));
        group.MapPost("/jobs/bulk", Guarded(BulkEndpointAsync));
        group.MapGet("/queues/{queue}", Guarded(async http =>
        {
            var name = (string)http.Request.RouteValues["queue"]!;
            var stats = (await Stats(http).GetAsync(http.RequestAborted).ConfigureAwait(false)).Queues.FirstOrDefault(q => q.Queue == name);
            await WriteAsync(http, QueuePage.Render(Page(http), name, stats?.Limits ?? QueueLimits.None, stats?.Paused ?? false, [], Done(http))).ConfigureAwait(false);
        }));
        group.MapPost("/queues/{queue}/limits", Guarded(QueueLimitsAsync));
        // Two routes, not a regex constraint: apps built with CreateSlimBuilder have no regex routing.
        group.MapPost("/queues/{queue}/pause", Guarded(http => QueueControlAsync(http, pause: true)));
        group.MapPost("/queues/{queue}/resume", Guarded(http => QueueControlAsync(http, pause: false)));

        group.MapGet("/assets/{name}", Guarded(async http =>
        {
            if (Assets.Get(http.Request.RouteValues["name"] as string ?? "") is not { } asset)
            {
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            http.Response.ContentType = asset.ContentType;
            http.Response.Headers.CacheControl = "public, max-age=3600";
            await http.Response.Body.WriteAsync(asset.Content, http.RequestAborted).ConfigureAwait(false);
        }));
        return group;

        async Task ActAsync(HttpContext http, string back, string action, long[]? ids, Func<Task<string>> run)
        {
            if (options.ReadOnly)
            {
                await WriteTextAsync(http, "The dashboard is read-only: actions are off.", StatusCodes.Status403Forbidden).ConfigureAwait(false);
                return;
            }

            try
            {
                await http.RequestServices.GetRequiredService<IAntiforgery>().ValidateRequestAsync(http).ConfigureAwait(false);
            }
            catch (AntiforgeryValidationException)
            {
                await WriteTextAsync(http, "The form's anti-forgery token is missing or not valid: reload the page and try again.", StatusCodes.Status400BadRequest).ConfigureAwait(false);
                return;
            }

            var outcome = await run().ConfigureAwait(false);
            DashboardLog.Action(logger, http.User.Identity?.Name ?? "anonymous", action, ids is null ? "-" : string.Join(", ", ids), outcome);
            var separator = back.Contains('?', StringComparison.Ordinal) ? '&' : '?';
            http.Response.Redirect($"{back}{separator}done={Uri.EscapeDataString(outcome)}"); // 302 after a POST: the browser GETs the page again
        }

        Task QueueControlAsync(HttpContext http, bool pause)
        {
            var name = (string)http.Request.RouteValues["queue"]!;
            return ActAsync(http, basePath.Length == 0 ? "/" : basePath, pause ? "pause queue" : "resume queue", null, async () =>
            {
                try
                {
                    var queue = Queue(http);
                    var changed = pause ? await queue.PauseQueueAsync(name, http.RequestAborted).ConfigureAwait(false) : await queue.ResumeQueueAsync(name, http.RequestAborted).ConfigureAwait(false);
                    Stats(http).Invalidate();
                    return $"Queue '{name}' {(pause ? (changed ? "paused: nothing of it starts until it is resumed" : "was paused already") : (changed ? "resumed" : "was not paused"))}.";
                }
                catch (ArgumentException invalid)
                {
                    return $"Queue '{name}' was not changed: {invalid.Message}";
                }
            });
        }

        async Task QueueLimitsAsync(HttpContext http)
        {
            var name = (string)http.Request.RouteValues["queue"]!;
            if (!http.Request.HasFormContentType)
            {
                await WriteTextAsync(http, "A form is expected.", StatusCodes.Status400BadRequest).ConfigureAwait(false);
                return;
            }

            var form = await http.Request.ReadFormAsync(http.RequestAborted).ConfigureAwait(false);
            var problems = new List<string>();
            var limits = QueuePage.Parse(field => form[field].FirstOrDefault(), problems);
            if (problems.Count > 0 && !options.ReadOnly)
            {
                var current = (await Stats(http).GetAsync(http.RequestAborted).ConfigureAwait(false)).Queues.FirstOrDefault(q => q.Queue == name);
                await WriteAsync(http, QueuePage.Render(Page(http), name, current?.Limits ?? QueueLimits.None, current?.Paused ?? false, problems, null), StatusCodes.Status400BadRequest).ConfigureAwait(false);
                return;
            }

            await ActAsync(http, $"{basePath}/queues/{Uri.EscapeDataString(name)}", "set queue limits", null, async () =>
            {
                try
                {
                    await Queue(http).SetQueueLimitsAsync(name, limits, http.RequestAborted).ConfigureAwait(false);
                    Stats(http).Invalidate();
                    return $"Queue '{name}' limits: {QueuePage.Describe(limits)}.";
                }
                catch (ArgumentException invalid)
                {
                    return $"Queue '{name}' was not changed: {invalid.Message}";
                }
            }).ConfigureAwait(false);
        }

        async Task BulkEndpointAsync(HttpContext http)
        {
            if (!http.Request.HasFormContentType)
            {
                await WriteTextAsync(http, "A form is expected.", StatusCodes.Status400BadRequest).ConfigureAwait(false);
                return;
            }

            var form = await http.Request.ReadFormAsync(http.RequestAborted).ConfigureAwait(false);
            var problems = new List<string>();
            var filter = JobFilter.Parse(name => form[name].FirstOrDefault(), problems) with { Before = null };
            var action = form["action"].FirstOrDefault();
            if (problems.Count > 0 || action is not ("cancel" or "redrive"))
            {
                await WriteTextAsync(http, problems.Count > 0 ? string.Join(" ", problems) : "action must be 'cancel' or 'redrive'.", StatusCodes.Status400BadRequest).ConfigureAwait(false);
                return;
            }

            var back = $"{basePath}/jobs{Html.Query(filter.Values(withPage: false))}";
            await ActAsync(http, back, "bulk " + action, null, () => BulkAsync(Queue(http), filter, action, options.BulkLimit, http.RequestAborted)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One page of a filter's jobs. A filter the store serves from an index searches everything; any other
    /// searches one window of ids below the page's start, so a page never walks the whole table (the caller
    /// goes on below the window). Returns the lowest id searched when older jobs are left.
    /// </summary>
    private static async Task<(IReadOnlyList<JobInfo> Jobs, long? SearchedFrom)> SearchAsync(IJobQueue queue, JobFilter filter, int window, CancellationToken cancellationToken)
    {
        if (filter.SearchesAll) return (await queue.ListJobsAsync(filter.ToQuery(JobFilter.PageSize), cancellationToken).ConfigureAwait(false), null);
        var top = filter.Before;
        if (top is null)
        {
            // The window starts above the newest job (the primary key's last entry).
            var newest = await queue.ListJobsAsync(new JobListQuery { Limit = 1 }, cancellationToken).ConfigureAwait(false);
            if (newest.Count == 0) return ([], null);
            top = newest[0].Id + 1;
        }

        var from = Math.Max(1, top.Value - window);
        var jobs = await queue.ListJobsAsync(filter.ToQuery(JobFilter.PageSize) with { BeforeId = top, FromId = from }, cancellationToken).ConfigureAwait(false);
        return (jobs, from > 1 ? from : null);
    }

    private static async Task<string> BulkAsync(IJobQueue queue, JobFilter filter, string action, int limit, CancellationToken cancellationToken)
    {
        var states = action == "redrive" ? [JobState.Dead] : new[] { JobState.Waiting, JobState.Scheduled, JobState.Available, JobState.Running };
        var (changed, seen) = (0, 0);
        long? before = null;
        while (seen < limit)
        {
            var page = await queue.ListJobsAsync(filter.ToQuery(Math.Min(500, limit - seen)) with { BeforeId = before }, cancellationToken).ConfigureAwait(false);
            if (page.Count == 0) break;
            foreach (var job in page)
            {
                seen++;
                if (!states.Contains(job.State)) continue;
                var ok = action == "redrive"
                    ? await queue.RedriveAsync(job.Id, cancellationToken).ConfigureAwait(false)
                    : await queue.CancelAsync(job.Id, cancellationToken).ConfigureAwait(false) is CancelOutcome.Cancelled or CancelOutcome.CancellationRequested;
                if (ok) changed++;
            }

            before = page[^1].Id;
        }

        return $"{(action == "redrive" ? "Retried" : "Cancelled")} {changed:N0} of the {seen:N0} matching job(s) looked at{(seen >= limit ? $" (the limit is {limit:N0}; narrow the filter for more)" : "")}.";
    }

    private static IJobQueue Queue(HttpContext http) => http.RequestServices.GetRequiredService<IJobQueue>();

    private static DashboardStats Stats(HttpContext http) => http.RequestServices.GetRequiredService<DashboardStats>();

    private static long JobId(HttpContext http) => long.Parse((string)http.Request.RouteValues["id"]!, CultureInfo.InvariantCulture);

    private static Task WriteAsync(HttpContext http, string html, int status = StatusCodes.Status200OK)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/html; charset=utf-8";
        return http.Response.WriteAsync(html, http.RequestAborted);
    }

    private static Task WriteTextAsync(HttpContext http, string text, int status)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/plain; charset=utf-8";
        return http.Response.WriteAsync(text, http.RequestAborted);
    }

    private static string? Done(HttpContext http) => http.Request.Query["done"].FirstOrDefault() is { Length: > 0 and <= 300 } done ? done : null;

    private static string Describe(CancelOutcome outcome) => outcome switch
    {
        CancelOutcome.Cancelled => "Cancelled.",
        CancelOutcome.CancellationRequested => "Cancellation requested: the running job is asked to stop at its worker's next heartbeat.",
        CancelOutcome.AlreadyFinished => "Not cancelled: the job had already finished.",
        _ => "Not cancelled: there is no such job.",
    };

    private static string Closed(string? environment) => new Html()
        .Raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Scheduling dashboard: closed</title></head><body><main>")
        .Element("h1", "The scheduling dashboard is closed")
        .Element("p", $"Outside the Development environment (this is '{environment ?? "unknown"}') the dashboard needs an authorization policy: "
            + "set SchedulingDashboardOptions.AuthorizationPolicy (or Scheduling:Dashboard:AuthorizationPolicy) to a policy the app registers, "
            + "and call app.UseAuthentication() and app.UseAuthorization(). AllowAnonymous opens it to anyone.")
        .Raw("</main></body></html>").ToString();
}

/// <summary>The dashboard's log lines.</summary>
internal static partial class DashboardLog
{
    [LoggerMessage(4000, LogLevel.Information, "Dashboard: {User} ran '{Action}' on job(s) {Jobs}: {Outcome}")] // jobs "-": a filtered set or a queue, named in the outcome
    public static partial void Action(ILogger logger, string user, string action, string jobs, string outcome);
}
