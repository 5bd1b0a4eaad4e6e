using System.Globalization;

namespace Scheduling.Dashboard.Pages;

/// <summary>
/// The last hour's finished jobs as an SVG bar chart, one bar a minute (succeeded, with dead and
/// cancelled stacked on top), drawn on the server: no script, no library. Its text alternative
/// gives the totals and the busiest minute.
/// </summary>
internal static class ActivityChart
{
    private const int Minutes = 60, BarWidth = 10, Height = 120;

    public static void Render(Html html, IReadOnlyList<QueueActivity> lastHour, DateTimeOffset now)
    {
        var end = new DateTimeOffset(now.UtcTicks - now.UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
        var start = end.AddMinutes(-(Minutes - 1));
        var bars = new (long Done, long Dead, long Cancelled)[Minutes];
        foreach (var a in lastHour)
        {
            var i = (int)((a.Minute - start).Ticks / TimeSpan.TicksPerMinute);
            if (i is < 0 or >= Minutes) continue;
            bars[i] = (bars[i].Done + a.Succeeded, bars[i].Dead + a.Dead, bars[i].Cancelled + a.Cancelled);
        }

        var (done, dead, cancelled) = (bars.Sum(b => b.Done), bars.Sum(b => b.Dead), bars.Sum(b => b.Cancelled));
        var peak = Math.Max(1, bars.Max(b => b.Done + b.Dead + b.Cancelled));
        var busiest = Array.FindIndex(bars, b => b.Done + b.Dead + b.Cancelled == peak);
        var summary = done + dead + cancelled == 0
            ? "No job finished in the last hour."
            : string.Create(CultureInfo.InvariantCulture, $"In the last hour {done:N0} job(s) succeeded, {dead:N0} died and {cancelled:N0} were cancelled or expired; the busiest minute, {start.AddMinutes(busiest):HH:mm} UTC, finished {peak:N0}.");

        html.Raw("<figure class=\"chart\">")
            .Open("svg", ("viewBox", $"0 0 {Minutes * BarWidth} {Height}"), ("role", "img"), ("aria-labelledby", "activity-title activity-desc"), ("preserveAspectRatio", "none"))
            .Element("title", "Finished jobs per minute, last hour", ("id", "activity-title"))
            .Element("desc", summary, ("id", "activity-desc"));
        for (var i = 0; i < Minutes; i++)
        {
            var x = i * BarWidth;
            var y = (double)Height;
            foreach (var (count, css) in new[] { (bars[i].Done, "done"), (bars[i].Dead, "dead"), (bars[i].Cancelled, "cancelled") })
            {
                if (count == 0) continue;
                var h = Math.Max(1.0, count * (double)Height / peak);
                y -= h;
                html.Open("rect", ("class", css), ("x", Number(x + 1)), ("y", Number(y)), ("width", Number(BarWidth - 2)), ("height", Number(h))).Raw("</rect>");
            }
        }

        html.Raw("</svg><div class=\"axis\" aria-hidden=\"true\">")
            .Element("span", start.ToString("HH:mm", CultureInfo.InvariantCulture)).Element("span", end.ToString("HH:mm", CultureInfo.InvariantCulture) + " UTC").Raw("</div>")
            .Open("figcaption").Text(summary).Raw(" <span class=\"key key-done\">succeeded</span> <span class=\"key key-dead\">dead</span> <span class=\"key key-cancelled\">cancelled</span></figcaption></figure>");
    }

    private static string Number(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
}
