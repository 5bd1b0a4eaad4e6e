using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Scheduling.Dashboard.Tests;

/// <summary>The pages against a real app: what they show, filtering and keyset paging, bulk actions, the shared counts.</summary>
public sealed partial class PagesTests
{
    [Fact]
    public async Task The_overview_shows_each_queue_by_state_and_the_live_hosts()
    {
        await using var app = await DashboardApp.StartAsync();
        await app.Queue.EnqueueManyAsync([new JobRequest("k") { Queue = "mail" }, new JobRequest("k") { Queue = "mail" }, new JobRequest("k") { Queue = "reports", RunAt = DateTimeOffset.UtcNow.AddHours(1) }]);
        await ((IJobWorkerStore)app.Queue).ReportHostAsync(new WorkerHostInfo("box-1", ["mail"], null), TimeSpan.FromMinutes(1));

        var (status, page) = await app.GetAsync("/scheduling");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("1 live worker host(s)", page, StringComparison.Ordinal);
        Assert.Matches(@"<th scope=""row""><a href=""/scheduling/jobs\?queue=mail"">mail</a></th><td><a [^>]*>0</a></td><td><a href=""/scheduling/jobs\?queue=mail&amp;state=available"">2</a>", page);
        Assert.Matches(@"reports</a></th>(<td>.*?</td>){2}<td><a [^>]*>1</a></td>", page); // scheduled
        var (_, fragment) = await app.GetAsync("/scheduling/fragments/queues");
        Assert.DoesNotContain("<html", fragment, StringComparison.Ordinal);
        Assert.Contains(">mail</a>", fragment, StringComparison.Ordinal);
        var (_, hosts) = await app.GetAsync("/scheduling/hosts");
        Assert.Contains("box-1", hosts, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_overview_charts_the_last_hour_of_finished_jobs_and_counts_them_per_queue()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 9, 30, 20, TimeSpan.Zero));
        await using var app = await DashboardApp.StartAsync(services: s => s.AddSingleton<TimeProvider>(time));
        var store = (IJobWorkerStore)app.Queue;
        await app.Queue.EnqueueManyAsync([new JobRequest("k") { Queue = "mail" }, new JobRequest("k") { Queue = "mail" }, new JobRequest("k") { Queue = "mail", MaxAttempts = 1 }, new JobRequest("k") { Queue = "mail" }]);
        var leased = await store.AcquireAsync(new AcquireRequest("mail", "w", 3, TimeSpan.FromMinutes(1)));
        await store.CompleteAsync(leased[0].Lease);
        time.Advance(TimeSpan.FromMinutes(2));
        await store.CompleteAsync(leased[1].Lease);
        await store.FailAsync(leased[2].Lease, "boom");

        var (_, page) = await app.GetAsync("/scheduling");

        Assert.Contains("In the last hour 2 job(s) succeeded, 1 died and 0 were cancelled or expired; the busiest minute, 09:32 UTC, finished 2.", page, StringComparison.Ordinal);
        Assert.Equal(3, Regex.Count(page, "<rect class=\"(done|dead)\"")); // two minutes: one bar, then a bar with a dead part
        Assert.Matches(@">mail</a></th>(<td>.*?</td>){5}<td>2</td><td><a href=""/scheduling/jobs\?queue=mail&amp;state=dead"" class=""warn"">1</a></td>", page);

        // Once the last active job is done, the queue is still listed for the hour, with what finished.
        await store.CompleteAsync(Assert.Single(await store.AcquireAsync(new AcquireRequest("mail", "w", 1, TimeSpan.FromMinutes(1)))).Lease);
        time.Advance(TimeSpan.FromSeconds(6));
        var (_, later) = await app.GetAsync("/scheduling");
        Assert.Matches(@">mail</a></th>(<td>.*?</td>){5}<td>3</td>.*?<span>no active job</span></td></tr>", later);
    }

    [Fact]
    public async Task A_queue_is_paused_and_resumed_from_the_overview_and_the_counts_show_it_at_once()
    {
        await using var app = await DashboardApp.StartAsync();
        await app.Queue.EnqueueAsync(new JobRequest("k") { Queue = "mail" });
        Assert.Contains("aria-label=\"Pause queue mail\"", (await app.GetAsync("/scheduling")).Body, StringComparison.Ordinal);

        using var paused = await app.PostAsync("/scheduling/queues/mail/pause", [], tokenFrom: "/scheduling/fragments/queues");
        Assert.Equal(HttpStatusCode.Redirect, paused.StatusCode);
        var (_, page) = await app.GetAsync(paused.Headers.Location!.OriginalString);
        Assert.Contains("Queue &#x27;mail&#x27; paused: nothing of it starts until it is resumed.", page, StringComparison.Ordinal);
        Assert.Contains("aria-label=\"Resume queue mail\"", page, StringComparison.Ordinal); // not the cached counts of before
        Assert.Empty(await ((IJobWorkerStore)app.Queue).AcquireAsync(new AcquireRequest("mail", "w", 1, TimeSpan.FromMinutes(1))));

        using var resumed = await app.PostAsync("/scheduling/queues/mail/resume", [], tokenFrom: "/scheduling");
        Assert.Equal(HttpStatusCode.Redirect, resumed.StatusCode);
        Assert.Single(await ((IJobWorkerStore)app.Queue).AcquireAsync(new AcquireRequest("mail", "w", 1, TimeSpan.FromMinutes(1))));
        using var forged = await app.PostAsync("/scheduling/queues/mail/pause", []);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await app.PostAsync("/scheduling/queues/mail/delete", [], tokenFrom: "/scheduling")).StatusCode);
    }

    private sealed class FixedReport(AraImpactReport report) : IAraReportSource
    {
        public (DateTimeOffset From, DateTimeOffset To, int Ceiling)? Asked;

        public ValueTask<AraImpactReport> GetAraReportAsync(DateTimeOffset windowStart, DateTimeOffset windowEnd, int ceilingMemoryMb, CancellationToken cancellationToken = default)
        {
            Asked = (windowStart, windowEnd, ceilingMemoryMb);
            return ValueTask.FromResult(report);
        }
    }

    [Fact]
    public async Task The_resources_page_shows_the_hash_audit_and_memory_given_against_used()
    {
        var now = new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);
        var source = new FixedReport(new AraImpactReport
        {
            From = now.AddDays(-3), To = now, HashMismatches = 2,
            Days = [new AraDailyRow(new DateOnly(2026, 12, 5), "etl", 40, 1, 3, 2, 0)],
            TopAllocations = [new AraMemoryBucket(4096, 30)],
            Fits = [new AraDefinitionFit("etl", 38, 4_600, 3_900, 5_200, 1)],
        });
        await using var app = await DashboardApp.StartAsync(services: s => s.AddSingleton<IAraReportSource>(source).AddSingleton<TimeProvider>(new FakeTimeProvider(now)),
            scheduling: s => s.Configure(o => o.Ara.CeilingMemoryMb = 16_384));

        var (status, page) = await app.GetAsync("/scheduling/ara?days=3");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal((now.AddDays(-3), now, 16_384), source.Asked);
        Assert.Contains("Hash audit: 2 job(s) have a command hash that is not md5 of their command", page, StringComparison.Ordinal);
        Assert.Matches("<th scope=\"row\">etl</th><td>38</td><td>4,600 MB</td><td>3,900 MB</td><td>5,200 MB</td><td>15%</td><td class=\"warn\">1</td>", page);
        Assert.Equal(3, Regex.Count(page, "<rect class=\"(given|peak|max)\""));
        Assert.Contains("4,096 MB: 30 job(s)", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await app.GetAsync("/scheduling/ara?days=90")).Status);

        await using var plain = await DashboardApp.StartAsync();
        Assert.Contains("This job store keeps no ARA report", (await plain.GetAsync("/scheduling/ara")).Body, StringComparison.Ordinal);
    }

    private sealed class FixedPlan(RecurringJobsPlan plan) : IRecurringJobsView
    {
        public RecurringJobsPlan? Current => plan;
    }

    [Fact]
    public async Task The_recurring_page_shows_each_jobs_crons_offset_and_ticks_the_busiest_hour_and_the_stored_jobs()
    {
        var tick = new DateTimeOffset(2026, 12, 6, 13, 0, 17, TimeSpan.Zero);
        var plan = new RecurringJobsPlan(
            [new RecurringJobPlan("nightly-report", "report", "reports", "Europe/Paris", new StaggerResult("nightly-report", "0 * * * *", "17 0 * * * *", 17, StaggerSource.Planned), TimeSpan.FromSeconds(40), [tick, tick.AddHours(1)])],
            tick.AddMinutes(-5))
        {
            BusiestHour = new DateTimeOffset(2026, 1, 5, 8, 0, 0, TimeSpan.Zero), Unstaggered = [.. Enumerable.Repeat(0, 119), 8], Staggered = [.. Enumerable.Repeat(0, 119), 2], Peak = (8, 2),
        };
        await using var app = await DashboardApp.StartAsync(services: s => s.AddSingleton<IRecurringJobsView>(new FixedPlan(plan)));
        await ((IRecurringJobStore)app.Queue).SaveRecurringJobAsync(new RecurringJobDefinition("cleanup", "*/5 * * * *", "cleanup") { Paused = true });

        var (status, page) = await app.GetAsync("/scheduling/recurring");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("<code>0 * * * *</code></td><td><code>17 0 * * * *</code></td><td>17 s (planned)</td><td>Europe/Paris</td><td>40 s</td>", page, StringComparison.Ordinal);
        Assert.Contains("2026-12-06 13:00:17 UTC", page, StringComparison.Ordinal);
        Assert.Contains("The busiest hour of a week (Mon 08:00 UTC): at most 8 job(s) run at once with every job at second 0, 2 with the offsets.", page, StringComparison.Ordinal);
        Assert.Equal(2, Regex.Count(page, "<rect class=\"(un)?staggered\""));
        Assert.Matches("<th scope=\"row\">cleanup</th><td><code>\\*/5 \\* \\* \\* \\*</code></td><td>UTC</td><td>cleanup in default</td><td class=\"warn\">paused</td>", page);

        await using var none = await DashboardApp.StartAsync();
        Assert.Contains("No recurring scheduler has planned in this process", (await none.GetAsync("/scheduling/recurring")).Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_queues_limits_are_set_and_cleared_from_its_page_and_a_bad_value_is_named()
    {
        await using var app = await DashboardApp.StartAsync();
        await app.Queue.EnqueueAsync(new JobRequest("k") { Queue = "mail" });
        Assert.Contains("href=\"/scheduling/queues/mail\"", (await app.GetAsync("/scheduling")).Body, StringComparison.Ordinal);

        using var set = await app.PostAsync("/scheduling/queues/mail/limits", [new("rate", "10/s"), new("rate_per_key", ""), new("concurrency_per_key", "2"), new("fair_keys", "true")], tokenFrom: "/scheduling/queues/mail");
        Assert.Equal(HttpStatusCode.Redirect, set.StatusCode);
        var (_, page) = await app.GetAsync(set.Headers.Location!.OriginalString);
        Assert.Contains("Limits: at most 10/1s starts, 2 running per key, keys served fairly.", page, StringComparison.Ordinal);
        var stats = Assert.Single(await app.Queue.GetQueueStatsAsync());
        Assert.Equal(new QueueLimits { Rate = new RateLimit(10, TimeSpan.FromSeconds(1)), ConcurrencyPerKey = 2, FairKeys = true }, stats.Limits);

        using var bad = await app.PostAsync("/scheduling/queues/mail/limits", [new("rate", "fast"), new("concurrency_per_key", "0")], tokenFrom: "/scheduling/queues/mail");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var error = await bad.Content.ReadAsStringAsync();
        Assert.Contains("rate: &#x27;fast&#x27; is not COUNT/PERIOD", error, StringComparison.Ordinal);
        Assert.Contains("concurrency_per_key: &#x27;0&#x27; is not a whole number from 1", error, StringComparison.Ordinal);
        Assert.Equal(2, Assert.Single(await app.Queue.GetQueueStatsAsync()).Limits.ConcurrencyPerKey); // unchanged

        using var cleared = await app.PostAsync("/scheduling/queues/mail/limits", [], tokenFrom: "/scheduling/queues/mail");
        Assert.Equal(HttpStatusCode.Redirect, cleared.StatusCode);
        Assert.False(Assert.Single(await app.Queue.GetQueueStatsAsync()).Limits.IsLimited);
        using var forged = await app.PostAsync("/scheduling/queues/mail/limits", [new("rate", "1/s")]);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.False(Assert.Single(await app.Queue.GetQueueStatsAsync()).Limits.IsLimited);
    }

    [Fact]
    public async Task Counts_are_read_once_per_cache_period_however_many_viewers_refresh()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = await DashboardApp.StartAsync(services: s => s.AddSingleton<TimeProvider>(time));
        var stats = app.Services.GetRequiredService<DashboardStats>();

        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => app.GetAsync("/scheduling/fragments/queues")));
        Assert.Equal(1, stats.Reads);
        time.Advance(TimeSpan.FromSeconds(6));
        await app.GetAsync("/scheduling");
        await app.GetAsync("/scheduling/hosts");
        Assert.Equal(2, stats.Reads);
    }

    [Fact]
    public async Task Jobs_are_filtered_and_paged_by_keyset_and_a_bad_filter_is_named()
    {
        await using var app = await DashboardApp.StartAsync();
        var mail = (await app.Queue.EnqueueManyAsync(Enumerable.Range(0, 60).Select(i => new JobRequest("send") { Queue = "mail" }).ToArray())).Select(r => r.JobId).ToArray();
        await app.Queue.EnqueueManyAsync(Enumerable.Range(0, 5).Select(i => new JobRequest("report") { Queue = "reports" }).ToArray());

        var (_, first) = await app.GetAsync("/scheduling/jobs?queue=mail&state=available");
        var shown = JobIds(first);
        Assert.Equal(mail.Reverse().Take(50), shown);
        var next = Regex.Match(first, @"href=""(?<href>/scheduling/jobs\?[^""]*before=\d+)""[^>]*>Older jobs").Groups["href"].Value.Replace("&amp;", "&", StringComparison.Ordinal);
        Assert.Contains("queue=mail", next, StringComparison.Ordinal);
        var (_, second) = await app.GetAsync(next);
        Assert.Equal(mail.Reverse().Skip(50), JobIds(second));
        Assert.DoesNotContain("Older jobs", second, StringComparison.Ordinal);

        var (_, reports) = await app.GetAsync("/scheduling/jobs?kind=report");
        Assert.Equal(5, JobIds(reports).Count);

        var (status, bad) = await app.GetAsync("/scheduling/jobs?state=stuck&since=yesterday");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("state: &#x27;stuck&#x27; is not a job state", bad, StringComparison.Ordinal);
        Assert.Contains("since: &#x27;yesterday&#x27; is not a date and time", bad, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_search_no_index_serves_looks_through_one_window_of_ids_a_page_and_goes_on_below_it()
    {
        await using var app = await DashboardApp.StartAsync(dashboard: o => o.SearchWindow = 1_000);
        var store = (IJobWorkerStore)app.Queue;
        var rare = (await app.Queue.EnqueueAsync(new JobRequest("rare") { UniqueKey = "order-42", MaxAttempts = 2 })).JobId;
        await store.FailAsync(Assert.Single(await store.AcquireAsync(new AcquireRequest(JobRequest.DefaultQueue, "w", 1, TimeSpan.FromMinutes(1)))).Lease, "Disk FULL on /data");
        var others = (await app.Queue.EnqueueManyAsync(Enumerable.Range(0, 2_500).Select(_ => new JobRequest("common")).ToArray())).Select(r => r.JobId).ToArray();

        // Three windows of 1,000 ids: the newest two hold no rare job, the third does.
        var (_, page) = await app.GetAsync("/scheduling/jobs?kind=rare");
        for (var window = 0; window < 2; window++)
        {
            Assert.Empty(JobIds(page));
            Assert.Contains("No job matches among these.", page, StringComparison.Ordinal);
            Assert.Contains($"Searched the jobs from id {others[^1] + 1 - (window + 1) * 1_000:N0}", page, StringComparison.Ordinal);
            var older = Regex.Match(page, @"href=""(?<href>/scheduling/jobs\?[^""]*before=\d+)""[^>]*>Search older jobs").Groups["href"].Value.Replace("&amp;", "&", StringComparison.Ordinal);
            Assert.Contains("kind=rare", older, StringComparison.Ordinal);
            (_, page) = await app.GetAsync(older);
        }

        Assert.Equal([rare], JobIds(page));
        Assert.DoesNotContain("Search older jobs", page, StringComparison.Ordinal); // it reached the first id

        // The running jobs are searched in full: the oldest is far below the newest window.
        var running = Assert.Single(await store.AcquireAsync(new AcquireRequest(JobRequest.DefaultQueue, "w", 1, TimeSpan.FromMinutes(1))));
        var (_, runningPage) = await app.GetAsync("/scheduling/jobs?state=running");
        Assert.Equal([running.Id], JobIds(runningPage));
        Assert.DoesNotContain("Searched the jobs", runningPage, StringComparison.Ordinal);

        // A unique key is looked up among all jobs at once; an error's text ignores case.
        var (_, byKey) = await app.GetAsync("/scheduling/jobs?key=order-42");
        Assert.Equal([rare], JobIds(byKey));
        Assert.DoesNotContain("Searched the jobs", byKey, StringComparison.Ordinal);
        var (_, byError) = await app.GetAsync($"/scheduling/jobs?error=disk+full&before={rare + 1}");
        Assert.Equal([rare], JobIds(byError));
        var (status, tooLong) = await app.GetAsync("/scheduling/jobs?error=" + new string('x', 201));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("error: at most 200 characters (was 201).", tooLong, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bulk_retry_acts_on_the_filtered_dead_jobs_only()
    {
        await using var app = await DashboardApp.StartAsync();
        var store = (IJobWorkerStore)app.Queue;
        await app.Queue.EnqueueManyAsync([new JobRequest("a") { MaxAttempts = 1 }, new JobRequest("a") { MaxAttempts = 1 }, new JobRequest("b") { MaxAttempts = 1 }, new JobRequest("a")]);
        foreach (var job in await store.AcquireAsync(new AcquireRequest(JobRequest.DefaultQueue, "w", 3, TimeSpan.FromMinutes(1))))
            await store.FailAsync(job.Lease, "boom");

        using var response = await app.PostAsync("/scheduling/jobs/bulk", [new("kind", "a"), new("state", "dead"), new("action", "redrive")], tokenFrom: "/scheduling/jobs?kind=a&state=dead");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var (_, page) = await app.GetAsync(response.Headers.Location!.OriginalString);
        Assert.Contains("Retried 2 of the 2 matching job(s) looked at.", page, StringComparison.Ordinal);
        var states = (await app.Queue.ListJobsAsync(new JobListQuery())).ToDictionary(j => j.Id, j => (j.Kind, j.State));
        Assert.Equal(3, states.Values.Count(v => v == ("a", JobState.Available))); // the two redriven, and the one that never ran
        Assert.Equal(("b", JobState.Dead), states.Values.Single(v => v.Kind == "b"));
    }

    [Fact]
    public async Task A_job_page_shows_its_facts_errors_trace_link_graph_and_why_it_waits()
    {
        await using var app = await DashboardApp.StartAsync(dashboard: d => d.TraceLinkTemplate = "https://traces.example/t/{traceId}");
        using var source = new System.Diagnostics.ActivitySource("dashboard-test");
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = s => s.Name is "Scheduling" or "dashboard-test",
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        IReadOnlyList<EnqueueResult> ids;
        string traceId;
        using (var request = source.StartActivity("request"))
        {
            traceId = request!.TraceId.ToHexString();
            ids = await app.Queue.EnqueueManyAsync([
                new JobRequest("extract", new { table = "orders" }) { LocalKey = "p", Priority = 1 },
                new JobRequest("load") { DependsOn = [JobDependency.OnRequest("p")], Priority = 5 }]);
        }

        var (_, parent) = await app.GetAsync($"/scheduling/jobs/{ids[0].JobId}");
        Assert.Contains($"<a href=\"https://traces.example/t/{traceId}\">{traceId}</a>", parent, StringComparison.Ordinal);
        Assert.Contains("&quot;table&quot;: &quot;orders&quot;", parent, StringComparison.Ordinal); // pretty JSON, as text
        Assert.Contains("1 (effective 5, inherited from a job waiting on it)", parent, StringComparison.Ordinal);
        Assert.Contains($"<a href=\"/scheduling/jobs/{ids[1].JobId}\">job {ids[1].JobId}</a><span class=\"state waiting\">waiting</span>", parent, StringComparison.Ordinal);
        Assert.Contains("No live worker host serves queue &#x27;default&#x27;.", parent, StringComparison.Ordinal);

        var (_, child) = await app.GetAsync($"/scheduling/jobs/{ids[1].JobId}");
        Assert.Contains($"It is waiting on parent {ids[0].JobId} (available).", child, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await app.GetAsync("/scheduling/jobs/999999")).Status);
    }

    private static List<long> JobIds(string page) =>
        JobRow().Matches(page).Select(m => long.Parse(m.Groups["id"].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();

    [GeneratedRegex(@"<tr><th scope=""row""><a href=""/scheduling/jobs/(?<id>\d+)"">")]
    private static partial Regex JobRow();
}
