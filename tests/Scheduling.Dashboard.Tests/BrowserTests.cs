using Microsoft.Playwright;
using Npgsql;
using Scheduling.LocalPostgres;
using Scheduling.Postgres;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Dashboard.Tests;

/// <summary>
/// The dashboard in a real browser (Debian's Chromium, driven by Playwright) over a real PostgreSQL
/// with seeded jobs: every page loads, a filter finds the dead job, retrying it makes it run, a
/// cancel cancels, each "why not started" reason reads right, and a hostile payload stays text.
/// Screenshots go to the test output's screenshots folder.
/// </summary>
public sealed class BrowserTests : IAsyncLifetime
{
    private const string Chromium = "/usr/bin/chromium";
    private TemporaryPostgresCluster? _cluster;
    private string _connection = "";
    private readonly string _schema = $"dash_{Guid.NewGuid():N}"[..16];
    private static readonly string Screenshots = Path.Combine(AppContext.BaseDirectory, "screenshots");

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("SCHEDULING_TEST_POSTGRES") is { Length: > 0 } external) _connection = external;
        else
        {
            if (TemporaryPostgresCluster.FindBinDirectory() is null)
                throw new InvalidOperationException("The browser tests need PostgreSQL: install its server binaries (Debian/Ubuntu: 'apt-get install postgresql') or set SCHEDULING_TEST_POSTGRES.");
            _cluster = await TemporaryPostgresCluster.StartAsync();
            _connection = _cluster.ConnectionString();
        }

        Directory.CreateDirectory(Screenshots);
    }

    public async Task DisposeAsync()
    {
        await using (var data = NpgsqlDataSource.Create(_connection))
        await using (var drop = data.CreateCommand($"DROP SCHEMA IF EXISTS \"{_schema}\" CASCADE"))
            await drop.ExecuteNonQueryAsync();
        if (_cluster is not null) await _cluster.DisposeAsync();
    }

    private sealed record Seeded(long Dead, long Paused, long Parent, long Child, long Later, long Hostile);

    /// <summary>Jobs for every reason, written before any worker runs (one serves only "media").</summary>
    private async Task<Seeded> SeedAsync()
    {
        await using var data = NpgsqlDataSource.Create(_connection);
        var queue = new PostgresJobQueue(data, new PostgresQueueOptions { Schema = _schema });
        var dead = (await queue.EnqueueAsync(new JobRequest("render", 1) { Queue = "media", MaxAttempts = 1 })).JobId;
        var leased = Assert.Single(await queue.AcquireAsync(new AcquireRequest("media", "seed", 1, TimeSpan.FromMinutes(1))));
        await queue.FailAsync(leased.Lease, "System.IO.IOException: the disk was full\n   at Render.Write()");
        var paused = (await queue.EnqueueAsync(new JobRequest("report") { Queue = "reports" })).JobId;
        await queue.PauseQueueAsync("reports");
        var graph = await queue.EnqueueManyAsync([
            new JobRequest("extract") { Queue = "etl", LocalKey = "p" },
            new JobRequest("load") { Queue = "etl", DependsOn = [JobDependency.OnRequest("p")] }]);
        var later = (await queue.EnqueueAsync(new JobRequest("digest") { Queue = "etl", RunAt = DateTimeOffset.UtcNow.AddHours(3) })).JobId;
        var hostile = (await queue.EnqueueAsync(new JobRequest("import", new { name = "<script>alert('x')</script><img src=x onerror=alert(1)>" }) { Queue = "etl" })).JobId;
        return new Seeded(dead, paused, graph[0].JobId, graph[1].JobId, later, hostile);
    }

    [Fact]
    public async Task An_operator_finds_the_dead_job_retries_it_sees_it_run_cancels_another_and_reads_why_jobs_wait()
    {
        var seeded = await SeedAsync();
        await using var app = await DashboardApp.StartAsync(runWorkers: true, scheduling: s => s
            .UsePostgres(_connection, o => o.Schema = _schema)
            .Configure(o => { o.Queues.Clear(); o.AddQueue("media", concurrency: 2); o.PollInterval = TimeSpan.FromMilliseconds(200); })
            .AddHandler<int>("render", (_, _) => Task.CompletedTask));
        if (!File.Exists(Chromium)) throw new InvalidOperationException($"The browser tests drive Debian's Chromium at {Chromium}: install it ('apt-get install chromium').");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync(new() { BaseURL = app.BaseAddress.ToString().TrimEnd('/'), ViewportSize = new() { Width = 1280, Height = 900 } });
        var dialogs = new List<string>();
        page.Dialog += async (_, dialog) => { dialogs.Add(dialog.Message); await dialog.AcceptAsync(); };

        // Overview: each queue and its counts.
        await page.GotoAsync("/scheduling");
        await Assertions.Expect(page.GetByRole(AriaRole.Table)).ToContainTextAsync("reports");
        await Assertions.Expect(page.GetByRole(AriaRole.Row, new() { Name = "reports" })).ToContainTextAsync("paused");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "overview.png"), FullPage = true });

        // Jobs: filter to the dead ones, open it.
        await page.GetByRole(AriaRole.Link, new() { Name = "Jobs", Exact = true }).ClickAsync();
        await page.GetByLabel("State").SelectOptionAsync("dead");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Row)).ToHaveCountAsync(2); // the header and the dead job
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "jobs-dead.png"), FullPage = true });

        // The same job by the text of its error, in any case, whatever its state.
        await page.GetByLabel("State").SelectOptionAsync("");
        await page.GetByLabel("Error contains").FillAsync("DISK WAS");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Row)).ToHaveCountAsync(2);
        await Assertions.Expect(page.GetByRole(AriaRole.Row).Nth(1)).ToContainTextAsync("dead");
        await page.GetByRole(AriaRole.Link, new() { Name = seeded.Dead.ToString(System.Globalization.CultureInfo.InvariantCulture), Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("ol.errors")).ToContainTextAsync("the disk was full");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "job-dead.png"), FullPage = true });

        // Retry it: the worker serving "media" runs it.
        await page.GetByRole(AriaRole.Button, new() { Name = "Retry (fresh attempts, due now)" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Retried");
        await Eventually.HoldsAsync(async () => (await app.Queue.GetJobAsync(seeded.Dead))!.State == JobState.Succeeded, "the retried job runs");
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator(".lede .state")).ToHaveTextAsync("succeeded");

        // Cancel the job held by the paused queue (the button asks first).
        await page.GotoAsync($"/scheduling/jobs/{seeded.Paused}");
        await Assertions.Expect(page.Locator("ul.why")).ToContainTextAsync("Queue 'reports' is paused.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Cancel" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Cancelled.");
        Assert.Equal(JobState.Cancelled, (await app.Queue.GetJobAsync(seeded.Paused))!.State);
        Assert.Equal(["Cancel?"], dialogs);

        // Why each of the others has not started.
        await page.GotoAsync($"/scheduling/jobs/{seeded.Child}");
        await Assertions.Expect(page.Locator("ul.why")).ToContainTextAsync($"It is waiting on parent {seeded.Parent} (available).");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "job-waiting.png"), FullPage = true });
        await page.GotoAsync($"/scheduling/jobs/{seeded.Later}");
        await Assertions.Expect(page.Locator("ul.why")).ToContainTextAsync("It is not due until");
        await page.GotoAsync($"/scheduling/jobs/{seeded.Parent}");
        await Assertions.Expect(page.Locator("ul.why")).ToContainTextAsync("No live worker host serves queue 'etl'.");

        // A hostile payload is shown as text and runs nothing.
        await page.GotoAsync($"/scheduling/jobs/{seeded.Hostile}");
        await Assertions.Expect(page.Locator("pre code").First).ToContainTextAsync("<script>alert('x')</script>");
        Assert.Equal(0, await page.Locator("main script, main img").CountAsync());
        Assert.Equal(["Cancel?"], dialogs); // no alert ran

        // Resources: the real store's report.
        await page.GetByRole(AriaRole.Link, new() { Name = "Resources", Exact = true }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Hash audit: every stored command hash is md5");

        // Hosts, and the page at a phone's width.
        await page.GotoAsync("/scheduling/hosts");
        await Assertions.Expect(page.GetByRole(AriaRole.Table)).ToContainTextAsync("media");
        await page.SetViewportSizeAsync(390, 844);
        await page.GotoAsync($"/scheduling/jobs/{seeded.Dead}");
        Assert.True(await page.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth + 1"), "the job page fits a phone's width");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "job-phone.png"), FullPage = true });
    }
}
