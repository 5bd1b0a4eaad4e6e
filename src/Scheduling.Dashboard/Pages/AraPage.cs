using System.Globalization;

namespace Scheduling.Dashboard.Pages;

/// <summary>ARA's impact (<see cref="AraImpactReport"/>): the hash audit, memory given against memory used per definition, per day, the common sizes.</summary>
internal static class AraPage
{
    public static string Render(PageContext page, AraImpactReport? report, int days, string? problem) =>
        Layout.Page(page, "Resources (ARA)", "Resources", html =>
        {
            html.Open("form", ("method", "get"), ("action", $"{page.Base}/ara"), ("class", "filter"))
                .Open("label").Text("Days ").Open("input", ("type", "number"), ("name", "days"), ("min", "1"), ("max", "30"), ("value", days.ToString(CultureInfo.InvariantCulture))).Raw("</label>")
                .Raw("<button type=\"submit\">Show</button></form>");
            if (problem is not null)
            {
                html.Element("p", problem, ("class", "error"), ("role", "alert"));
                return;
            }

            if (report is null)
            {
                html.Element("p", "This job store keeps no ARA report (the PostgreSQL store does).", ("class", "empty"));
                return;
            }

            html.Open("p", ("class", "meta")).Text("Jobs enqueued and runs finished from ").Time(report.From).Text(" to ").Time(report.To).Raw("</p>");
            html.Element("p", report.HashMismatches == 0
                    ? "Hash audit: every stored command hash is md5 of its job's final command (none of a description)."
                    : $"Hash audit: {report.HashMismatches:N0} job(s) have a command hash that is not md5 of their command: their history is shared with unrelated jobs.",
                ("class", report.HashMismatches == 0 ? "done" : "error"), ("role", report.HashMismatches == 0 ? "status" : "alert"));

            html.Element("h2", "Given against used, per definition");
            if (report.Fits.Count == 0) html.Element("p", "No run was recorded in the window.", ("class", "empty"));
            else
            {
                FitChart(html, report.Fits);
                html.Raw("<div class=\"scroll\"><table><caption>Recorded runs per definition</caption><thead><tr><th scope=\"col\">Definition</th><th scope=\"col\">Runs</th>")
                    .Raw("<th scope=\"col\">Mean given</th><th scope=\"col\">Mean peak</th><th scope=\"col\">Highest peak</th><th scope=\"col\">Slack</th><th scope=\"col\">Killed for memory</th></tr></thead><tbody>");
                foreach (var f in report.Fits)
                {
                    var slack = f.MeanAllocatedMb > 0 ? (f.MeanAllocatedMb - f.MeanPeakMb) / f.MeanAllocatedMb : 0;
                    html.Raw("<tr>").Element("th", f.DefinitionId, ("scope", "row")).Element("td", f.Runs.ToString("N0", CultureInfo.InvariantCulture))
                        .Element("td", $"{f.MeanAllocatedMb:N0} MB").Element("td", $"{f.MeanPeakMb:N0} MB").Element("td", $"{f.MaxPeakMb:N0} MB")
                        .Element("td", (slack * 100).ToString("0", CultureInfo.InvariantCulture) + "%")
                        .Element("td", f.OomKilled.ToString("N0", CultureInfo.InvariantCulture), ("class", f.OomKilled > 0 ? "warn" : null)).Raw("</tr>");
                }

                html.Raw("</tbody></table></div>");
            }

            html.Element("h2", "Per day and definition");
            if (report.Days.Count == 0) html.Element("p", "No sized job was enqueued in the window.", ("class", "empty"));
            else
            {
                html.Raw("<div class=\"scroll\"><table><caption>Sized jobs enqueued</caption><thead><tr><th scope=\"col\">Day</th><th scope=\"col\">Definition</th><th scope=\"col\">Jobs</th>")
                    .Raw("<th scope=\"col\">No command hash</th><th scope=\"col\">Over 1.5x baseline</th><th scope=\"col\">At the ceiling</th><th scope=\"col\">GPU (not sized)</th></tr></thead><tbody>");
                foreach (var d in report.Days)
                {
                    html.Raw("<tr>").Element("td", d.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)).Element("th", d.DefinitionId, ("scope", "row"))
                        .Element("td", d.Jobs.ToString("N0", CultureInfo.InvariantCulture)).Element("td", d.NullCommandHash.ToString("N0", CultureInfo.InvariantCulture))
                        .Element("td", d.OverOneAndHalfBaseline.ToString("N0", CultureInfo.InvariantCulture))
                        .Element("td", d.AtCeiling.ToString("N0", CultureInfo.InvariantCulture), ("class", d.AtCeiling > 0 ? "warn" : null))
                        .Element("td", d.Gpu.ToString("N0", CultureInfo.InvariantCulture)).Raw("</tr>");
                }

                html.Raw("</tbody></table></div>");
            }

            if (report.TopAllocations.Count > 0)
            {
                html.Element("h2", "Most common sizes").Raw("<ul class=\"sizes\">");
                foreach (var b in report.TopAllocations) html.Element("li", $"{b.MemoryMb:N0} MB: {b.Jobs:N0} job(s)");
                html.Raw("</ul>");
            }
        });

    /// <summary>One row per definition: the mean memory given as a bar, the mean and highest peaks marked on it.</summary>
    private static void FitChart(Html html, IReadOnlyList<AraDefinitionFit> fits)
    {
        const int Width = 600, Row = 22, Label = 0;
        var scale = Math.Max(1, fits.Max(f => Math.Max(f.MeanAllocatedMb, f.MaxPeakMb)));
        html.Raw("<figure class=\"chart fit\">")
            .Open("svg", ("viewBox", $"0 0 {Width} {fits.Count * Row}"), ("role", "img"), ("aria-labelledby", "fit-title"), ("preserveAspectRatio", "none"))
            .Element("title", "Mean memory given (bar) against mean peak (dark mark) and highest peak (red mark) per definition, as in the table below", ("id", "fit-title"));
        for (var i = 0; i < fits.Count; i++)
        {
            var f = fits[i];
            var y = i * Row;
            double X(double mb) => Label + mb / scale * (Width - Label - 2);
            html.Open("rect", ("class", "given"), ("x", N(Label)), ("y", N(y + 4)), ("width", N(X(f.MeanAllocatedMb) - Label)), ("height", N(Row - 8))).Raw("</rect>")
                .Open("rect", ("class", "peak"), ("x", N(X(f.MeanPeakMb) - 1)), ("y", N(y + 2)), ("width", "3"), ("height", N(Row - 4))).Raw("</rect>")
                .Open("rect", ("class", "max"), ("x", N(X(f.MaxPeakMb) - 1)), ("y", N(y + 2)), ("width", "3"), ("height", N(Row - 4))).Raw("</rect>");
        }

        html.Raw("</svg>").Open("figcaption").Text(string.Join("; ", fits.Select(f => $"{f.DefinitionId}: given {f.MeanAllocatedMb:N0} MB, peak {f.MeanPeakMb:N0} MB (highest {f.MaxPeakMb:N0} MB)")))
            .Raw(" <span class=\"key key-given\">given</span> <span class=\"key key-peak\">mean peak</span> <span class=\"key key-dead\">highest peak</span></figcaption></figure>");
    }

    private static string N(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
}
