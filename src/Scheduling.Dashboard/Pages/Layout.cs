namespace Scheduling.Dashboard.Pages;

/// <summary>What every page needs to know about the request it answers.</summary>
/// <param name="Base">The dashboard's path prefix (no trailing slash).</param>
/// <param name="Options">The dashboard's options.</param>
/// <param name="AntiforgeryField">The hidden form field's name, or null when actions are off.</param>
/// <param name="AntiforgeryToken">The token for this user's forms.</param>
/// <param name="Notice">An anonymous-access or read-only note for the banner, if any.</param>
internal sealed record PageContext(string Base, SchedulingDashboardOptions Options, string? AntiforgeryField, string? AntiforgeryToken, string? Notice)
{
    public bool CanAct => !Options.ReadOnly && AntiforgeryField is not null;

    /// <summary>A form that posts to <paramref name="action"/> with the anti-forgery token.</summary>
    public Html Form(Html html, string action, string? cssClass = null)
    {
        html.Open("form", ("method", "post"), ("action", action), ("class", cssClass));
        if (AntiforgeryField is not null) html.Open("input", ("type", "hidden"), ("name", AntiforgeryField), ("value", AntiforgeryToken));
        return html;
    }
}

/// <summary>The frame of every page: head, skip link, navigation, banner.</summary>
internal static class Layout
{
    public static string Page(PageContext page, string title, string current, Action<Html> body)
    {
        var html = new Html()
            .Raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .Element("title", $"{title} · Scheduling")
            .Open("link", ("rel", "stylesheet"), ("href", $"{page.Base}/assets/dashboard.css"))
            .Open("script", ("src", $"{page.Base}/assets/dashboard.js"), ("defer", "defer")).Raw("</script></head><body>")
            .Raw("<a class=\"skip\" href=\"#main\">Skip to content</a><header><span class=\"brand\">Scheduling</span><nav aria-label=\"Dashboard\">");
        foreach (var (path, label) in new[] { ("/", "Overview"), ("/jobs", "Jobs"), ("/hosts", "Hosts"), ("/recurring", "Recurring"), ("/ara", "Resources") })
            html.Element("a", label, ("href", page.Base + path), ("aria-current", label == current ? "page" : null));
        html.Raw("</nav></header>");
        if (page.Notice is { } notice) html.Element("p", notice, ("class", "notice"), ("role", "note"));
        html.Raw("<main id=\"main\">").Element("h1", title);
        body(html);
        return html.Raw("</main></body></html>").ToString();
    }
}
