namespace Scheduling.Dashboard.Pages;

/// <summary>Per queue counts by state, the oldest due job, paused and limited queues, live hosts; refreshed in place.</summary>
internal static class OverviewPage
{
    public static string Render(PageContext page, DashboardStats.Snapshot stats) =>
        Layout.Page(page, "Overview", "Overview", html =>
        {
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
        if (stats.Queues.Count == 0)
        {
            html.Element("p", "No queue has active jobs.", ("class", "empty"));
            return;
        }

        html.Raw("<div class=\"scroll\"><table><caption>Active jobs per queue</caption><thead><tr>")
            .Raw("<th scope=\"col\">Queue</th><th scope=\"col\">Waiting</th><th scope=\"col\">Due</th><th scope=\"col\">Scheduled</th><th scope=\"col\">Running</th>")
            .Raw("<th scope=\"col\">Oldest due</th><th scope=\"col\">Done (1 h)</th><th scope=\"col\">Dead (1 h)</th><th scope=\"col\">Hosts</th><th scope=\"col\">Oversized</th><th scope=\"col\">State</th></tr></thead><tbody>");
        foreach (var q in stats.Queues)
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
            var state = q.Paused ? "paused" : q.Limits.IsLimited ? "limited" : "running";
            html.Element("td", state, ("class", q.Paused ? "warn" : null));
            html.Raw("</tr>");
        }

        html.Raw("</tbody></table></div>");
    }

    private static void Cell(Html html, long count, PageContext page, string queue, string state) =>
        html.Raw("<td>").Link($"{page.Base}/jobs{Html.Query(("queue", queue), ("state", state))}", count.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)).Raw("</td>");
}
