using System.Globalization;

namespace Scheduling.Dashboard.Pages;

/// <summary>One queue's flow control: its limits (rates, a per-key cap, fair keys), set for every host from a form.</summary>
internal static class QueuePage
{
    public static string Render(PageContext page, string queue, QueueLimits limits, bool paused, IReadOnlyList<string> problems, string? done) =>
        Layout.Page(page, $"Queue {queue}", "Overview", html =>
        {
            if (done is not null) html.Element("p", done, ("class", "done"), ("role", "status"));
            foreach (var problem in problems) html.Element("p", problem, ("class", "error"), ("role", "alert"));
            html.Open("p", ("class", "lede")).Text(paused ? "Paused for every host. " : "Running. ")
                .Text("Limits: " + Describe(limits) + ". ").Link($"{page.Base}/jobs{Html.Query(("queue", queue))}", "Its jobs").Raw("</p>");
            if (!page.CanAct) return;

            page.Form(html, $"{page.Base}/queues/{Uri.EscapeDataString(queue)}/limits", "filter");
            Field(html, "rate", "Rate for the queue (COUNT/PERIOD, e.g. 10/s)", limits.Rate?.ToString());
            Field(html, "rate_per_key", "Rate per partition key", limits.RatePerKey?.ToString());
            Field(html, "concurrency_per_key", "Running at once per key", limits.ConcurrencyPerKey?.ToString(CultureInfo.InvariantCulture));
            html.Raw("<label>Fair keys ").Open("input", ("type", "checkbox"), ("name", "fair_keys"), ("value", "true"), ("checked", limits.FairKeys ? "checked" : null)).Raw("</label>")
                .Raw("<button type=\"submit\">Set the limits</button></form>")
                .Element("p", "Empty fields mean no such limit; the claim enforces them for every host at once.", ("class", "meta"));
        });

    internal static string Describe(QueueLimits limits) => limits.IsLimited
        ? string.Join(", ", new[]
        {
            limits.Rate is { } rate ? $"at most {rate} starts" : null,
            limits.RatePerKey is { } perKey ? $"{perKey} per key" : null,
            limits.ConcurrencyPerKey is { } cap ? $"{cap} running per key" : null,
            limits.FairKeys ? "keys served fairly" : null,
        }.OfType<string>())
        : "none";

    /// <summary>The limits a submitted form asks for; each value that does not parse is named in <paramref name="problems"/>.</summary>
    public static QueueLimits Parse(Func<string, string?> value, List<string> problems)
    {
        RateLimit? Rate(string name)
        {
            if (string.IsNullOrWhiteSpace(value(name))) return null;
            var text = value(name)!.Trim();
            if (RateLimit.TryParse(text, out var rate, out var problem)) return rate;
            problems.Add($"{name}: '{text}' {problem}.");
            return null;
        }

        int? cap = null;
        if (value("concurrency_per_key") is { } c && !string.IsNullOrWhiteSpace(c))
        {
            if (int.TryParse(c.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= QueueLimits.MaxConcurrencyPerKey) cap = n;
            else problems.Add($"concurrency_per_key: '{c.Trim()}' is not a whole number from 1 to {QueueLimits.MaxConcurrencyPerKey:N0}.");
        }

        return new QueueLimits { Rate = Rate("rate"), RatePerKey = Rate("rate_per_key"), ConcurrencyPerKey = cap, FairKeys = value("fair_keys") == "true" };
    }

    private static void Field(Html html, string name, string label, string? value) =>
        html.Open("label").Text(label + " ").Open("input", ("type", "text"), ("name", name), ("value", value)).Raw("</label>");
}
