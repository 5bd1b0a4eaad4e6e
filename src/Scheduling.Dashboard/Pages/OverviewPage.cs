namespace Scheduling.Dashboard.Pages;

/// <summary>Per queue counts by state, the oldest due job, paused and limited queues, live hosts; refreshed in place.</summary>
internal static class OverviewPage
{
    public static string Render(PageContext page, DashboardStats.Snapshot stats, string? done) =>
        Layout.Page(page, "Overview", "Overview", html =>
        {
            if (done is not null) html.Element("p", done, ("class", "done"), ("role", "status"));
            html.Open("section", ("aria-live", "polite"), ("data-refresh", $"{page.Base}/fragments/queues"));
            Queues(html, page, stats);
            html.Raw("</section>");
        });

    /// <summary>The queue table alone: what the page swaps in every few seconds (from the shared cache).</summary>
    public static string Queues(PageContext page, DashboardStats.Snapshot stats)
    {
        var html = new Html();
        Queues(html, page, stats);
        return html.ToString();
    }

    private static void Queues(Html html, PageContext page, DashboardStats.Snapshot stats)
    {
        html.Open("p", ("class", "meta")).Text($"{stats.Hosts.Count} live worker host(s). Counts read at ").Time(stats.ReadAt).Raw("</p>");
        ActivityChart.Render(html, stats.LastHour, stats.ReadAt);
        var finished = stats.LastHour.GroupBy(a => a.Queue, StringComparer.Ordinal).ToDictionary(g => g.Key, g => (Done: g.Sum(a => a.Succeeded), Dead: g.Sum(a => a.Dead)), StringComparer.Ordinal);
        // Queues with no active job but jobs finished in the last hour are listed too (their dead are news).
        var queues = stats.Queues.Concat(finished.Keys.Where(name => !stats.Queues.Any(q => q.Queue == name))
                .Select(name => new QueueStats(name, 0, 0, 0, null) { Hosts = stats.Hosts.Count(h => h.Serves(name)) }))
            .OrderBy(q => q.Queue, StringComparer.Ordinal).ToArray();
        if (queues.Length == 0)
        {
            html.Element("p", "No queue has active jobs, and none finished any in the last hour.", ("class", "empty"));
            return;
        }

        html.Raw("<div class=\"scroll\"><table><caption>Jobs per queue: active now, finished in the last hour</caption><thead><tr>")
            .Raw("<th scope=\"col\">Queue</th><th scope=\"col\">Waiting</th><th scope=\"col\">Due</th><th scope=\"col\">Scheduled</th><th scope=\"col\">Running</th>")
            .Raw("<th scope=\"col\">Oldest due</th><th scope=\"col\">Done (1 h)</th><th scope=\"col\">Dead (1 h)</th><th scope=\"col\">Hosts</th><th scope=\"col\">Oversized</th><th scope=\"col\">State</th></tr></thead><tbody>");
        foreach (var q in queues)
        {
            html.Raw("<tr><th scope=\"row\">").Link($"{page.Base}/jobs{Html.Query(("queue", q.Queue))}", q.Queue).Raw("</th>");
            Cell(html, q.Waiting, page, q.Queue, "waiting");
            Cell(html, q.Available, page, q.Queue, "available");
            Cell(html, q.Scheduled, page, q.Queue, "scheduled");
            Cell(html, q.Running, page, q.Queue, "running");
            html.Element("td", q.OldestDueAge is { } age ? WhyNotStarted.Span(age) : "-");
            var (done, dead) = finished.GetValueOrDefault(q.Queue);
            html.Element("td", done.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
            html.Raw("<td>").Link($"{page.Base}/jobs{Html.Query(("queue", q.Queue), ("state", "dead"))}", dead.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), dead > 0 ? "warn" : null).Raw("</td>");
            html.Element("td", q.Hosts.ToString(System.Globalization.CultureInfo.InvariantCulture), ("class", q.Hosts == 0 ? "warn" : null));
            html.Element("td", q.Oversized.ToString(System.Globalization.CultureInfo.InvariantCulture), ("class", q.Oversized > 0 ? "warn" : null));
            var active = stats.Queues.Contains(q);
            var state = !active ? "no active job" : q.Paused ? "paused" : q.Limits.IsLimited ? "limited" : "running";
            html.Raw("<td>");
            if (active) html.Link($"{page.Base}/queues/{Uri.EscapeDataString(q.Queue)}", state, q.Paused ? "warn" : null); // its limits
            else html.Element("span", state);
            if (page.CanAct && active) // a queue's paused state is read with its active jobs' counts
            {
                page.Form(html, $"{page.Base}/queues/{Uri.EscapeDataString(q.Queue)}/{(q.Paused ? "resume" : "pause")}", "inline queue-control")
                    .Element("button", q.Paused ? "Resume" : "Pause", ("type", "submit"), ("class", q.Paused ? null : "danger"), ("aria-label", $"{(q.Paused ? "Resume" : "Pause")} queue {q.Queue}"))
                    .Raw("</form>");
            }

            html.Raw("</td></tr>");
        }

        html.Raw("</tbody></table></div>");
    }

    private static void Cell(Html html, long count, PageContext page, string queue, string state) =>
        html.Raw("<td>").Link($"{page.Base}/jobs{Html.Query(("queue", queue), ("state", state))}", count.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)).Raw("</td>");
}
