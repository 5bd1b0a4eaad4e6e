using System.Globalization;

namespace Scheduling.Dashboard.Pages;

/// <summary>
/// The recurring jobs: as this process's scheduler plans them (original and effective cron, offset and
/// its source, next ticks), the busiest hour with and without stagger, and the jobs stored with the queue.
/// </summary>
internal static class RecurringPage
{
    public static string Render(PageContext page, RecurringJobsPlan? plan, IReadOnlyList<RecurringJobDefinition>? stored) =>
        Layout.Page(page, "Recurring jobs", "Recurring", html =>
        {
            if (plan is null)
            {
                html.Element("p", "No recurring scheduler has planned in this process (it runs in the worker hosts that register recurring jobs, with Scheduling.Stagger).", ("class", "empty"));
            }
            else
            {
                Timeline(html, plan);
                html.Raw("<div class=\"scroll\"><table><caption>As this host's scheduler runs them</caption><thead><tr><th scope=\"col\">Job</th><th scope=\"col\">Kind, queue</th>")
                    .Raw("<th scope=\"col\">Cron</th><th scope=\"col\">Runs on</th><th scope=\"col\">Offset</th><th scope=\"col\">Zone</th><th scope=\"col\">Usually takes</th><th scope=\"col\">Next ticks</th></tr></thead><tbody>");
                foreach (var job in plan.Jobs)
                {
                    html.Raw("<tr>").Element("th", job.Name, ("scope", "row")).Element("td", $"{job.Kind} in {job.Queue}")
                        .Raw("<td>").Element("code", job.Stagger.OriginalExpression).Raw("</td><td>").Element("code", job.Stagger.EffectiveExpression).Raw("</td>")
                        .Element("td", $"{job.Stagger.OffsetSeconds} s ({Source(job.Stagger.Source)})").Element("td", job.TimeZone)
                        .Element("td", WhyNotStarted.Span(job.ExpectedDuration)).Raw("<td>");
                    for (var i = 0; i < job.NextTicks.Count; i++)
                    {
                        if (i > 0) html.Raw("<br>");
                        html.Time(job.NextTicks[i]);
                    }

                    html.Raw("</td></tr>");
                }

                html.Raw("</tbody></table></div>");
            }

            if (stored is { Count: > 0 })
            {
                html.Element("h2", "Stored with the queue (changed without a deploy)")
                    .Raw("<div class=\"scroll\"><table><caption>Stored recurring jobs; hosts add the ones their code registers</caption><thead><tr><th scope=\"col\">Job</th><th scope=\"col\">Cron</th>")
                    .Raw("<th scope=\"col\">Zone</th><th scope=\"col\">Kind, queue</th><th scope=\"col\">State</th><th scope=\"col\">Updated</th></tr></thead><tbody>");
                foreach (var job in stored)
                {
                    html.Raw("<tr>").Element("th", job.Name, ("scope", "row")).Raw("<td>").Element("code", job.Cron).Raw("</td>").Element("td", job.TimeZone)
                        .Element("td", $"{job.Kind} in {job.Queue}").Element("td", job.Paused ? "paused" : "active", ("class", job.Paused ? "warn" : null))
                        .Raw("<td>").Time(job.UpdatedAt).Raw("</td></tr>");
                }

                html.Raw("</tbody></table></div>");
            }
        });

    private static string Source(StaggerSource source) => source switch
    {
        StaggerSource.Configured => "configured",
        StaggerSource.Hashed => "hash of the name",
        StaggerSource.Planned => "planned",
        StaggerSource.Explicit => "seconds in the cron",
        StaggerSource.Disabled => "stagger off",
        _ => "none",
    };

    /// <summary>The busiest hour of a week, at 30 s steps: how many jobs run at once unstaggered (light) and with the offsets (dark).</summary>
    private static void Timeline(Html html, RecurringJobsPlan plan)
    {
        if (plan.Unstaggered.Count == 0) return;
        const int Height = 100;
        var steps = plan.Unstaggered.Count;
        var width = steps * 6;
        var top = Math.Max(1, Math.Max(plan.Unstaggered.Max(), plan.Staggered.DefaultIfEmpty(0).Max()));
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"The busiest hour of a week ({plan.BusiestHour:ddd HH:mm} UTC): at most {plan.Peak.Unstaggered} job(s) run at once with every job at second 0, {plan.Peak.Staggered} with the offsets.");
        html.Element("h2", "The busiest hour, with and without stagger")
            .Raw("<figure class=\"chart\">")
            .Open("svg", ("viewBox", $"0 0 {width} {Height}"), ("role", "img"), ("aria-labelledby", "timeline-title timeline-desc"), ("preserveAspectRatio", "none"))
            .Element("title", "Jobs running at once per 30 seconds of the busiest hour: unstaggered (light) and staggered (dark)", ("id", "timeline-title"))
            .Element("desc", summary, ("id", "timeline-desc"));
        for (var i = 0; i < steps; i++)
        {
            Bar(html, "unstaggered", i * 6, 3, plan.Unstaggered[i], top, Height);
            if (i < plan.Staggered.Count) Bar(html, "staggered", i * 6 + 3, 3, plan.Staggered[i], top, Height);
        }

        html.Raw("</svg><div class=\"axis\" aria-hidden=\"true\">")
            .Element("span", plan.BusiestHour.ToString("ddd HH:mm", CultureInfo.InvariantCulture)).Element("span", plan.BusiestHour.AddHours(1).ToString("HH:mm", CultureInfo.InvariantCulture) + " UTC").Raw("</div>")
            .Open("figcaption").Text(summary).Raw(" <span class=\"key key-unstaggered\">unstaggered</span> <span class=\"key key-staggered\">staggered</span></figcaption></figure>");
    }

    private static void Bar(Html html, string css, int x, int width, int value, int top, int height)
    {
        if (value == 0) return;
        var h = value * (double)height / top;
        html.Open("rect", ("class", css), ("x", x.ToString(CultureInfo.InvariantCulture)), ("y", (height - h).ToString("0.##", CultureInfo.InvariantCulture)),
            ("width", width.ToString(CultureInfo.InvariantCulture)), ("height", h.ToString("0.##", CultureInfo.InvariantCulture))).Raw("</rect>");
    }
}
