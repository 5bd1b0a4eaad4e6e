using System.Globalization;
using System.Text.Json;

namespace Scheduling.Dashboard.Pages;

/// <summary>One job: its fields, payload, attempts' errors, lease, trace, allocation, parents and children, why it has not started, and its actions.</summary>
internal static class JobPage
{
    public static string Render(PageContext page, JobInfo job, IReadOnlyList<string> whyNotStarted, string? done) =>
        Layout.Page(page, $"Job {job.Id}", "Jobs", html =>
        {
            if (done is not null) html.Element("p", done, ("class", "done"), ("role", "status"));
            html.Open("p", ("class", "lede")).Element("span", WhyNotStarted.Name(job.State), ("class", "state " + WhyNotStarted.Name(job.State)))
                .Text($" {job.Kind} in queue {job.Queue}, attempt {job.Attempt} of {job.MaxAttempts}").Raw("</p>");

            html.Raw("<section aria-labelledby=\"why\">").Element("h2", job.State is JobState.Running or JobState.Succeeded or JobState.Dead or JobState.Cancelled or JobState.Expired ? "Status" : "Why hasn't it started?", ("id", "why"))
                .Raw("<ul class=\"why\">");
            foreach (var reason in whyNotStarted) html.Element("li", reason);
            html.Raw("</ul></section>");

            if (page.CanAct) Actions(html, page, job);

            html.Raw("<section aria-labelledby=\"facts\">").Element("h2", "Details", ("id", "facts")).Raw("<dl class=\"facts\">");
            Fact(html, "Priority", job.EffectivePriority > job.Priority ? $"{job.Priority} (effective {job.EffectivePriority}, inherited from a job waiting on it)" : $"{job.Priority}");
            TimeFact(html, "Enqueued", job.CreatedAt);
            TimeFact(html, "Run at", job.RunAt);
            TimeFact(html, "Latest start", job.LatestStartAt);
            TimeFact(html, "Attempted", job.AttemptedAt);
            TimeFact(html, "Expected to finish", job.ExpectedFinishAt);
            TimeFact(html, "Finished", job.FinalizedAt);
            if (job.LockedBy is { } holder)
            {
                html.Element("dt", "Lease").Open("dd").Text(holder + " until ").Time(job.LeaseExpiresAt)
                    .Text(job.CancellationRequested ? " (cancellation requested)" : "").Raw("</dd>");
            }

            Fact(html, "Partition key", job.PartitionKey);
            Fact(html, "Unique key", job.UniqueKey);
            Fact(html, "Timeout", job.Timeout is { } t ? $"{t.TotalSeconds:0.###} s per attempt" : null);
            Fact(html, "Snoozed", job.Snoozes > 0 ? $"{job.Snoozes} time(s)" : null);
            Fact(html, "Batch", job.BatchId?.ToString(CultureInfo.InvariantCulture));
            Fact(html, "Description", job.Description);
            Fact(html, "Command", job.Command);
            if (job.TraceId is { } traceId)
            {
                html.Element("dt", "Trace").Open("dd");
                if (page.Options.TraceLinkTemplate is { } template) html.Link(template.Replace("{traceId}", traceId, StringComparison.Ordinal), traceId);
                else html.Element("code", traceId);
                html.Raw("</dd>");
            }

            if (job.Progress is { } progress)
                Fact(html, "Progress", $"{(progress.Fraction is { } f ? $"{f:P0}" : "")} {progress.Message}".Trim());
            html.Raw("</dl></section>");

            if (job.Allocation is { } allocation) Allocation(html, allocation);
            Graph(html, page, job);
            Block(html, page, "Payload", job.PayloadJson, json: true);
            Block(html, page, "Result", job.ResultJson, json: true);
            Errors(html, page, job);
        });

    private static void Actions(Html html, PageContext page, JobInfo job)
    {
        if (job.State is JobState.Dead)
        {
            page.Form(html, $"{page.Base}/jobs/{job.Id}/redrive", "inline").Raw("<button type=\"submit\">Retry (fresh attempts, due now)</button></form>");
        }

        if (!job.State.IsTerminal() && !job.CancellationRequested)
        {
            page.Form(html, $"{page.Base}/jobs/{job.Id}/cancel", "inline")
                .Element("button", job.State == JobState.Running ? "Ask it to stop (cancel)" : "Cancel", ("type", "submit"), ("class", "danger")).Raw("</form>");
        }
    }

    private static void Allocation(Html html, ResourceAllocation a)
    {
        html.Raw("<section aria-labelledby=\"ara\">").Element("h2", "Resources (ARA)", ("id", "ara")).Raw("<dl class=\"facts\">");
        Fact(html, "Given", $"{a.MemoryMb:N0} MB, {a.CpuMillicores:N0}m CPU, {a.Gpus} GPU(s)");
        Fact(html, "Why", a.SkipReason != AraSkipReason.None
            ? $"sizing skipped ({a.SkipReason}): the definition's baseline of {a.BaselineMemoryMb:N0} MB"
            : a.Source == AllocationSource.Baseline
                ? $"no usable history: the baseline of {a.BaselineMemoryMb:N0} MB"
                : $"from {a.SampleCount} earlier run(s) ({a.Source}{(a.Statistic is { } s ? ", " + s : "")})"
                  + (a.CeilingHit ? "; capped at the ceiling" : a.Clamped ? "; clamped to the floor or ceiling" : ""));
        Fact(html, "Definition", a.DefinitionId);
        Fact(html, "Usually done within", a.ExpectedDuration is { } d ? WhyNotStarted.Span(d) : null);
        html.Raw("</dl></section>");
    }

    private static void Graph(Html html, PageContext page, JobInfo job)
    {
        if (job.Parents.Count == 0 && job.Children.Count == 0) return;
        html.Raw("<section aria-labelledby=\"graph\">").Element("h2", "Dependencies", ("id", "graph")).Raw("<div class=\"graph\">");
        Column(html, page, "Parents", job.Parents);
        html.Raw("<div class=\"node self\">").Element("span", $"job {job.Id}").Element("span", WhyNotStarted.Name(job.State), ("class", "state " + WhyNotStarted.Name(job.State))).Raw("</div>");
        Column(html, page, "Children", job.Children);
        html.Raw("</div></section>");
    }

    private static void Column(Html html, PageContext page, string label, IReadOnlyList<JobLink> links)
    {
        html.Open("ul", ("class", "column"), ("aria-label", label));
        if (links.Count == 0) html.Element("li", $"no {label.ToLowerInvariant()}", ("class", "none"));
        foreach (var link in links)
        {
            html.Raw("<li class=\"node\">").Link($"{page.Base}/jobs/{link.JobId}", $"job {link.JobId}")
                .Element("span", WhyNotStarted.Name(link.State), ("class", "state " + WhyNotStarted.Name(link.State))).Raw("</li>");
        }

        html.Raw("</ul>");
    }

    private static void Block(Html html, PageContext page, string title, string? text, bool json)
    {
        if (text is null) return;
        html.Raw("<section>").Element("h2", title).Raw("<pre><code>").Capped(json ? Pretty(text) : text, page.Options.DisplayLimit).Raw("</code></pre></section>");
    }

    private static void Errors(Html html, PageContext page, JobInfo job)
    {
        if (job.Errors.Count == 0) return;
        html.Raw("<section aria-labelledby=\"errors\">").Element("h2", "Errors of its attempts", ("id", "errors")).Raw("<ol class=\"errors\">");
        foreach (var e in job.Errors.Reverse())
        {
            html.Raw("<li>").Element("h3", $"Attempt {e.Attempt}").Time(e.At).Raw("<pre><code>").Capped(e.Message, page.Options.DisplayLimit).Raw("</code></pre></li>");
        }

        html.Raw("</ol></section>");
    }

    private static void Fact(Html html, string label, string? value)
    {
        if (string.IsNullOrEmpty(value)) return;
        html.Element("dt", label).Element("dd", value);
    }

    private static void TimeFact(Html html, string label, DateTimeOffset? at)
    {
        if (at is null) return;
        html.Element("dt", label).Raw("<dd>").Time(at).Raw("</dd>");
    }

    /// <summary>The JSON indented (its strings as they read: the page encodes them for HTML); text that is not JSON as it is.</summary>
    internal static string Pretty(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
                document.RootElement.WriteTo(writer);
            return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
        }
        catch (JsonException)
        {
            return json;
        }
    }
}
