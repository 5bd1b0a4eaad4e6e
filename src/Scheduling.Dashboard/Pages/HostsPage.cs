using System.Globalization;

namespace Scheduling.Dashboard.Pages;

/// <summary>The live worker hosts: what each serves and can hold.</summary>
internal static class HostsPage
{
    public static string Render(PageContext page, DashboardStats.Snapshot stats) =>
        Layout.Page(page, "Hosts", "Hosts", html =>
        {
            if (stats.Hosts.Count == 0)
            {
                html.Element("p", "No live worker hosts: no job runs until one starts.", ("class", "empty"));
                return;
            }

            html.Raw("<div class=\"scroll\"><table><caption>Live worker hosts</caption><thead><tr><th scope=\"col\">Worker</th><th scope=\"col\">Queues</th>")
                .Raw("<th scope=\"col\">Memory</th><th scope=\"col\">CPU</th><th scope=\"col\">GPUs</th><th scope=\"col\">Started</th><th scope=\"col\">Last report</th></tr></thead><tbody>");
            foreach (var h in stats.Hosts)
            {
                html.Raw("<tr>").Element("th", h.WorkerId, ("scope", "row")).Element("td", string.Join(", ", h.Queues))
                    .Element("td", Amount(h.Capacity?.MemoryMb, " MB")).Element("td", Amount(h.Capacity?.CpuMillicores, "m")).Element("td", Amount(h.Capacity?.Gpus, ""))
                    .Raw("<td>").Time(h.StartedAt).Raw("</td><td>").Time(h.SeenAt).Raw("</td></tr>");
            }

            html.Raw("</tbody></table></div>");
        });

    private static string Amount(int? amount, string unit) => amount is { } a ? a.ToString("N0", CultureInfo.InvariantCulture) + unit : "any";
}
