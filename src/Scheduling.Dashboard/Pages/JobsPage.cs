using System.Globalization;

namespace Scheduling.Dashboard.Pages;

/// <summary>The filter a jobs page and its bulk actions share, as it travels in the query string and forms.</summary>
internal sealed record JobFilter(string? Queue, string? Kind, JobState? State, DateTimeOffset? Since, DateTimeOffset? Until, long? Before, string? Key = null, string? Error = null)
{
    public const int PageSize = 50;

    /// <summary>The filter in a request's values; a value that does not parse is reported, never silently dropped.</summary>
    public static JobFilter Parse(Func<string, string?> value, List<string> problems)
    {
        string? Text(string name) => string.IsNullOrWhiteSpace(value(name)) ? null : value(name)!.Trim();
        JobState? state = null;
        if (Text("state") is { } s)
        {
            if (Enum.TryParse<JobState>(s, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed)) state = parsed;
            else problems.Add($"state: '{s}' is not a job state ({string.Join(", ", Enum.GetNames<JobState>().Select(n => n.ToLowerInvariant()))}).");
        }

        DateTimeOffset? Time(string name)
        {
            if (Text(name) is not { } t) return null;
            if (DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at)) return at;
            problems.Add($"{name}: '{t}' is not a date and time (e.g. 2026-12-06T08:00).");
            return null;
        }

        long? before = null;
        if (Text("before") is { } b)
        {
            if (long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0) before = id;
            else problems.Add($"before: '{b}' is not a job id.");
        }

        var error = Text("error");
        if (error is { Length: > JobListQuery.MaxErrorTextLength })
        {
            problems.Add($"error: at most {JobListQuery.MaxErrorTextLength} characters (was {error.Length}).");
            error = null;
        }

        return new JobFilter(Text("queue"), Text("kind"), state, Time("since"), Time("until"), before, Text("key"), error);
    }

    /// <summary>
    /// Whether the store finds every match without walking the jobs (a unique key; the dead or the running
    /// jobs, each in an index of its own): then a page searches everything, otherwise one window of ids
    /// (<see cref="SchedulingDashboardOptions.SearchWindow"/>). A long-running job is old: a window would hide it.
    /// </summary>
    public bool SearchesAll => Key is not null || State is JobState.Dead or JobState.Running;

    public JobListQuery ToQuery(int limit) => new()
    {
        Queue = Queue, Kind = Kind, States = State is { } s ? [s] : null, CreatedFrom = Since, CreatedBefore = Until, BeforeId = Before, Limit = limit,
        UniqueKey = Key, ErrorContains = Error,
    };

    public (string Name, string? Value)[] Values(bool withPage) =>
    [
        ("queue", Queue), ("kind", Kind), ("state", State is { } s ? WhyNotStarted.Name(s) : null), ("key", Key), ("error", Error),
        ("since", Since?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm", CultureInfo.InvariantCulture)),
        ("until", Until?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm", CultureInfo.InvariantCulture)),
        ("before", withPage ? Before?.ToString(CultureInfo.InvariantCulture) : null),
    ];
}

/// <summary>Jobs matching a filter, newest first, a page at a time by keyset; bulk actions on the filtered set.</summary>
internal static class JobsPage
{
    // searchedFrom: the lowest id a windowed search looked at, when older jobs are left to search; null when it reached the oldest.
    public static string Render(PageContext page, JobFilter filter, IReadOnlyList<JobInfo> jobs, IReadOnlyList<string> problems, string? done, long? searchedFrom = null) =>
        Layout.Page(page, "Jobs", "Jobs", html =>
        {
            if (done is not null) html.Element("p", done, ("class", "done"), ("role", "status"));
            foreach (var problem in problems) html.Element("p", problem, ("class", "error"), ("role", "alert"));
            Filter(html, page, filter);
            if (jobs.Count == 0)
            {
                html.Element("p", searchedFrom is null ? "No job matches." : "No job matches among these.", ("class", "empty"));
            }
            else
            {
                html.Raw("<div class=\"scroll\"><table><caption>Matching jobs, newest first</caption><thead><tr><th scope=\"col\">Id</th><th scope=\"col\">Queue</th><th scope=\"col\">Kind</th>")
                    .Raw("<th scope=\"col\">State</th><th scope=\"col\">Attempt</th><th scope=\"col\">Run at</th><th scope=\"col\">Enqueued</th><th scope=\"col\">Last error</th></tr></thead><tbody>");
                foreach (var job in jobs)
                {
                    html.Raw("<tr><th scope=\"row\">").Link($"{page.Base}/jobs/{job.Id}", job.Id.ToString(CultureInfo.InvariantCulture)).Raw("</th>")
                        .Element("td", job.Queue).Element("td", job.Kind)
                        .Element("td", WhyNotStarted.Name(job.State), ("class", "state " + WhyNotStarted.Name(job.State)))
                        .Element("td", $"{job.Attempt}/{job.MaxAttempts}")
                        .Raw("<td>").Time(job.RunAt).Raw("</td><td>").Time(job.CreatedAt).Raw("</td>")
                        .Element("td", job.Errors.Count > 0 ? FirstLine(job.Errors[^1].Message) : null, ("class", "error-text"))
                        .Raw("</tr>");
                }

                html.Raw("</tbody></table></div>");
                if (jobs.Count == JobFilter.PageSize)
                    html.Link($"{page.Base}/jobs{Html.Query([.. filter.Values(withPage: false), ("before", jobs[^1].Id.ToString(CultureInfo.InvariantCulture))])}", "Older jobs →", "next");
            }

            // A window searched to its end with older jobs left: say how far it looked, and go on below it.
            if (searchedFrom is { } from && jobs.Count < JobFilter.PageSize)
            {
                html.Open("p", ("class", "window")).Text($"Searched the jobs from id {from:N0}{(filter.Before is { } b ? $" to {b - 1:N0}" : " up")}. ")
                    .Link($"{page.Base}/jobs{Html.Query([.. filter.Values(withPage: false), ("before", from.ToString(CultureInfo.InvariantCulture))])}", "Search older jobs →", "next")
                    .Raw("</p>");
            }

            if (page.CanAct) Bulk(html, page, filter);
        });

    private static void Filter(Html html, PageContext page, JobFilter filter)
    {
        html.Open("form", ("method", "get"), ("action", $"{page.Base}/jobs"), ("class", "filter"), ("role", "search"));
        Field(html, "queue", "Queue", filter.Queue);
        Field(html, "kind", "Kind", filter.Kind);
        html.Raw("<label>State <select name=\"state\"><option value=\"\">any</option>");
        foreach (var state in Enum.GetValues<JobState>())
        {
            var name = WhyNotStarted.Name(state);
            html.Element("option", name, ("value", name), ("selected", filter.State == state ? "selected" : null));
        }

        html.Raw("</select></label>");
        Field(html, "key", "Unique key", filter.Key);
        Field(html, "error", "Error contains", filter.Error);
        var values = filter.Values(false).ToDictionary(v => v.Name, v => v.Value);
        Field(html, "since", "Enqueued from (UTC)", values["since"], "datetime-local");
        Field(html, "until", "Enqueued before (UTC)", values["until"], "datetime-local");
        html.Raw("<button type=\"submit\">Filter</button></form>");
    }

    private static void Field(Html html, string name, string label, string? value, string type = "text")
    {
        html.Open("label").Text(label + " ").Open("input", ("type", type), ("name", name), ("value", value)).Raw("</label>");
    }

    private static void Bulk(Html html, PageContext page, JobFilter filter)
    {
        page.Form(html, $"{page.Base}/jobs/bulk", "bulk");
        foreach (var (name, value) in filter.Values(withPage: false))
            if (value is not null) html.Open("input", ("type", "hidden"), ("name", name), ("value", value));
        html.Element("p", $"Acts on every job matching the filter (at most {page.Options.BulkLimit:N0}), not only this page.")
            .Raw("<button type=\"submit\" name=\"action\" value=\"redrive\">Retry the dead ones</button> ")
            .Raw("<button type=\"submit\" name=\"action\" value=\"cancel\" class=\"danger\">Cancel the unfinished ones</button></form>");
    }

    internal static string FirstLine(string text)
    {
        var line = text.AsSpan();
        var end = line.IndexOfAny('\r', '\n');
        if (end >= 0) line = line[..end];
        return line.Length > 160 ? string.Concat(line[..160], "…") : line.ToString();
    }
}
