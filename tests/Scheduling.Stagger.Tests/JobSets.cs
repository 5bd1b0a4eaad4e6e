using Scheduling.Stagger;

namespace Scheduling.Stagger.Tests;

/// <summary>The job sets of docs/stagger.md's figures: the incident's eight, and twenty typical ones.</summary>
internal static class JobSets
{
    /// <summary>The incident: four every-minute jobs, two every 5 minutes, two every 10, all at :00.</summary>
    public static readonly StaggerJob[] Incident =
    [
        new("sync-orders", "* * * * *", TimeSpan.FromSeconds(12)),
        new("sync-inventory", "* * * * *", TimeSpan.FromSeconds(10)),
        new("refresh-prices", "* * * * *", TimeSpan.FromSeconds(8)),
        new("poll-payments", "* * * * *", TimeSpan.FromSeconds(6)),
        new("rollup-metrics", "*/5 * * * *", TimeSpan.FromSeconds(20)),
        new("expire-sessions", "*/5 * * * *", TimeSpan.FromSeconds(15)),
        new("rebuild-search", "*/10 * * * *", TimeSpan.FromSeconds(30)),
        new("send-digests", "*/10 * * * *", TimeSpan.FromSeconds(25)),
    ];

    /// <summary>The incident's hand-picked offsets (:00 :15 :30 :45; :05 :25; :10 :40).</summary>
    public static readonly Dictionary<string, int> IncidentOffsets = new()
    {
        ["sync-orders"] = 0, ["sync-inventory"] = 15, ["refresh-prices"] = 30, ["poll-payments"] = 45,
        ["rollup-metrics"] = 5, ["expire-sessions"] = 25, ["rebuild-search"] = 10, ["send-digests"] = 40,
    };

    public static readonly StaggerJob[] Twenty =
    [
        .. Incident,
        new("warm-cache", "*/2 * * * *", TimeSpan.FromSeconds(5)),
        new("check-webhooks", "*/3 * * * *", TimeSpan.FromSeconds(9)),
        new("compact-queues", "*/4 * * * *", TimeSpan.FromSeconds(14)),
        new("export-events", "*/5 * * * *", TimeSpan.FromSeconds(18)),
        new("reconcile-ledger", "*/15 * * * *", TimeSpan.FromSeconds(40)),
        new("refresh-reports", "*/15 * * * *", TimeSpan.FromSeconds(35)),
        new("archive-logs", "*/30 * * * *", TimeSpan.FromSeconds(50)),
        new("sync-crm", "*/30 * * * *", TimeSpan.FromSeconds(45)),
        new("hourly-billing", "0 * * * *", TimeSpan.FromSeconds(50)),
        new("hourly-cleanup", "0 * * * *", TimeSpan.FromSeconds(30)),
        new("nightly-backup", "0 2 * * *", TimeSpan.FromSeconds(50)),
        new("weekday-report", "0 9 * * 1-5", TimeSpan.FromSeconds(40)),
    ];
}
