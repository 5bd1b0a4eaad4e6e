using System.Text.Json;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>The built `scheduling` tool, run as a process against the test cluster.</summary>
public sealed class CliOperatorTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private Task<(int Exit, string Out, string Err)> CliAsync(params string[] args) =>
        Scheduling.QueueContract.ToolProcess.RunAsync("Scheduling.Cli.dll", args, new Dictionary<string, string> { ["SCHEDULING_CONNECTION"] = database.ConnectionString });

    [Fact]
    public async Task Migrate_status_queues_and_jobs_commands_work_end_to_end()
    {
        var schema = database.NewSchema();

        var dry = await CliAsync("migrate", "--dry-run", "--schema", schema);
        Assert.Equal(0, dry.Exit);
        Assert.Contains($"CREATE TABLE \"{schema}\".jobs", dry.Out, StringComparison.Ordinal);
        var before = await CliAsync("status", "--schema", schema, "--json");
        Assert.Equal(5, before.Exit); // pending migrations
        using (var status = JsonDocument.Parse(before.Out)) Assert.Equal(0, status.RootElement.GetProperty("version").GetInt32());

        Assert.Equal(0, (await CliAsync("migrate", "--schema", schema)).Exit);
        var after = await CliAsync("status", "--schema", schema, "--json");
        Assert.Equal(0, after.Exit);
        using (var status = JsonDocument.Parse(after.Out)) Assert.Equal(PostgresMigrator.LatestVersion, status.RootElement.GetProperty("version").GetInt32());

        var queue = new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = schema });
        var ids = (await queue.EnqueueManyAsync(Enumerable.Range(0, 5).Select(i => new JobRequest("report", i) { Queue = "reports", MaxAttempts = 1 }).ToArray())).Select(r => r.JobId).ToArray();
        var later = (await queue.EnqueueAsync(new JobRequest("email") { Queue = "mail", RunAt = DateTimeOffset.UtcNow.AddHours(1) })).JobId;
        var dead = Assert.Single(await queue.AcquireAsync(new AcquireRequest("reports", "w", 1, TimeSpan.FromMinutes(1))));
        await queue.FailAsync(dead.Lease, "boom");

        var queues = await CliAsync("queues", "--schema", schema, "--json");
        Assert.Equal(0, queues.Exit);
        using (var q = JsonDocument.Parse(queues.Out))
        {
            var reports = q.RootElement.EnumerateArray().Single(e => e.GetProperty("queue").GetString() == "reports");
            Assert.Equal((4, 1), (reports.GetProperty("available").GetInt64(), reports.GetProperty("dead").GetInt64()));
            Assert.Equal(1, q.RootElement.EnumerateArray().Single(e => e.GetProperty("queue").GetString() == "mail").GetProperty("scheduled").GetInt64());
        }

        var page1 = await CliAsync("jobs", "list", "--schema", schema, "--queue", "reports", "--limit", "3", "--json");
        using (var list = JsonDocument.Parse(page1.Out))
        {
            Assert.Equal(ids.Reverse().Take(3), list.RootElement.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetInt64()));
            var next = list.RootElement.GetProperty("next").GetInt64();
            using var page2 = JsonDocument.Parse((await CliAsync("jobs", "list", "--schema", schema, "--queue", "reports", "--limit", "3", "--before-id", next.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json")).Out);
            Assert.Equal(ids.Take(2).Reverse(), page2.RootElement.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetInt64()));
        }

        foreach (var spelling in new[] { "dead", "Dead", "DEAD" })
        {
            using var deadOnly = JsonDocument.Parse((await CliAsync("jobs", "list", "--schema", schema, "--state", spelling, "--json")).Out);
            var row = Assert.Single(deadOnly.RootElement.GetProperty("jobs").EnumerateArray());
            Assert.Equal((dead.Id, "dead"), (row.GetProperty("id").GetInt64(), row.GetProperty("state").GetString()));
        }

        using (var byError = JsonDocument.Parse((await CliAsync("jobs", "list", "--schema", schema, "--error", "BOOM", "--from-id", ids[0].ToString(System.Globalization.CultureInfo.InvariantCulture), "--json")).Out))
            Assert.Equal([dead.Id], byError.RootElement.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetInt64()));
        var tooLong = await CliAsync("jobs", "list", "--schema", schema, "--error", new string('x', 201));
        Assert.Equal(2, tooLong.Exit);
        Assert.Contains("--error must be 1 to 200 characters (was 201).", tooLong.Err, StringComparison.Ordinal);

        var deadText = await CliAsync("jobs", "list", "--schema", schema, "--state", "dead");
        Assert.Equal(0, deadText.Exit);
        Assert.Matches($@"\b{dead.Id}\s+reports\s+report\s+dead\b", deadText.Out);

        var show = await CliAsync("jobs", "show", dead.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--schema", schema);
        Assert.Equal(0, show.Exit);
        Assert.Matches(@"(?m)^state\s+dead$", show.Out);
        Assert.Matches(@"(?m)^attempt\s+1 of 1$", show.Out);
        Assert.Matches(@"(?m)^error\s+attempt 1 at .*: boom$", show.Out);
        var showJson = await CliAsync("jobs", "show", dead.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--schema", schema, "--json");
        using (var shown = JsonDocument.Parse(showJson.Out))
        {
            Assert.Equal("dead", shown.RootElement.GetProperty("state").GetString());
            Assert.Equal("boom", shown.RootElement.GetProperty("errors")[0].GetProperty("message").GetString());
        }

        Assert.Equal(0, (await CliAsync("jobs", "redrive", dead.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--schema", schema)).Exit);
        Assert.Equal(5, (await CliAsync("jobs", "redrive", dead.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--schema", schema)).Exit); // not dead any more
        Assert.Equal(0, (await CliAsync("jobs", "retry", later.ToString(System.Globalization.CultureInfo.InvariantCulture), "--schema", schema)).Exit);
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(later))!.State);
        Assert.Equal(0, (await CliAsync("jobs", "cancel", ids[^1].ToString(System.Globalization.CultureInfo.InvariantCulture), "--schema", schema)).Exit);
        Assert.Equal(5, (await CliAsync("jobs", "cancel", ids[^1].ToString(System.Globalization.CultureInfo.InvariantCulture), "--schema", schema)).Exit);
        Assert.Equal(3, (await CliAsync("jobs", "show", "999999", "--schema", schema)).Exit);
    }

    [Fact]
    public async Task Bad_connections_and_bad_usage_get_clear_errors_and_distinct_exit_codes()
    {
        var unreachable = await CliAsync("queues", "--connection", "Host=127.0.0.1;Port=1;Timeout=2");
        Assert.Equal(4, unreachable.Exit);
        Assert.Contains("cannot use the database", unreachable.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", unreachable.Err, StringComparison.Ordinal); // no stack trace without --verbose

        var malformed = await CliAsync("queues", "--connection", "this is not a connection string");
        Assert.Equal(2, malformed.Exit);

        Assert.Equal(2, (await CliAsync("jobs", "show", "not-a-number")).Exit);
        Assert.Equal(2, (await CliAsync("queues", "--schema", "bad;schema")).Exit);
        Assert.Equal(2, (await CliAsync("nonsense")).Exit);
    }

    [Fact]
    public async Task Queues_pause_and_resume_for_every_host_and_the_listing_shows_it()
    {
        var queue = await database.NewQueueAsync();
        var schema = queue.Schema;
        await queue.EnqueueAsync(new JobRequest("k") { Queue = "reports" });

        Assert.Equal(0, (await CliAsync("queues", "pause", "reports", "--schema", schema)).Exit);
        Assert.Equal(5, (await CliAsync("queues", "pause", "reports", "--schema", schema)).Exit); // already paused
        Assert.Equal(0, (await CliAsync("queues", "pause", "empty-one", "--schema", schema)).Exit);
        Assert.Empty(await queue.AcquireAsync(new AcquireRequest("reports", "w", 10, TimeSpan.FromMinutes(1))));

        using (var listing = JsonDocument.Parse((await CliAsync("queues", "--schema", schema, "--json")).Out))
        {
            var rows = listing.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("queue").GetString()!, e => e.GetProperty("paused").GetBoolean());
            Assert.Equal(new Dictionary<string, bool> { ["empty-one"] = true, ["reports"] = true }, rows); // a paused queue is listed even when empty
        }

        Assert.Matches(@"(?m)^reports\s.*\spaused\s+-$", (await CliAsync("queues", "--schema", schema)).Out);
        var resumed = await CliAsync("queues", "resume", "reports", "--schema", schema);
        Assert.Equal((0, "queue 'reports' resumed"), (resumed.Exit, resumed.Out.Trim()));
        Assert.Equal(5, (await CliAsync("queues", "resume", "reports", "--schema", schema)).Exit);
        Assert.Single(await queue.AcquireAsync(new AcquireRequest("reports", "w", 10, TimeSpan.FromMinutes(1))));
        Assert.Equal(2, (await CliAsync("queues", "pause", "", "--schema", schema)).Exit);
    }

    [Fact]
    public async Task Hosts_lists_the_live_hosts_and_queues_names_the_jobs_too_large_for_all_of_them()
    {
        var queue = await database.NewQueueAsync();
        var schema = queue.Schema;
        Assert.Equal("No live worker hosts.", (await CliAsync("hosts", "--schema", schema)).Out.Trim());
        await queue.EnqueueManyAsync([
            new JobRequest("k") { Queue = "render", Command = "render big", Definition = new JobDefinition("big", 30_000, 1_000, 0) },
            new JobRequest("k") { Queue = "render", Command = "render small", Definition = new JobDefinition("small", 2_000, 1_000, 0) }]);
        await queue.ReportHostAsync(new WorkerHostInfo("box-4g", ["render", "mail"], new ResourceCapacity(MemoryMb: 4_096, CpuMillicores: 2_000)), TimeSpan.FromMinutes(1));

        var hosts = await CliAsync("hosts", "--schema", schema);
        Assert.Equal(0, hosts.Exit);
        Assert.Matches(@"(?m)^box-4g\s+4096 MB\s+2000m\s+any\s.*\srender, mail$", hosts.Out);
        using (var json = JsonDocument.Parse((await CliAsync("hosts", "--schema", schema, "--json")).Out))
            Assert.Equal(4_096, Assert.Single(json.RootElement.EnumerateArray()).GetProperty("capacity").GetProperty("memoryMb").GetInt32());

        var queues = await CliAsync("queues", "--schema", schema);
        Assert.Matches(@"(?m)^render\s+0\s+2\s+0\s+0\s+0\s+\S+ s\s+0\s+1\s+1\s+running", queues.Out);
        Assert.Contains("queue 'render': 1 job(s) need more than any of its 1 live host(s) can hold", queues.Out, StringComparison.Ordinal);
        using (var json = JsonDocument.Parse((await CliAsync("queues", "--schema", schema, "--json")).Out))
        {
            var render = Assert.Single(json.RootElement.EnumerateArray());
            Assert.Equal((1, 1L), (render.GetProperty("hosts").GetInt32(), render.GetProperty("oversized").GetInt64()));
        }
    }

    [Fact]
    public async Task The_dashboard_command_serves_the_schema_on_loopback_and_refuses_other_addresses()
    {
        var queue = await database.NewQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("render") { Queue = "media" })).JobId;
        var port = FreePort();
        using var process = Scheduling.QueueContract.ToolProcess.Start("Scheduling.Cli.dll",
            ["dashboard", "--schema", queue.Schema, "--urls", $"http://127.0.0.1:{port}", "--read-only"],
            new Dictionary<string, string> { ["SCHEDULING_CONNECTION"] = database.ConnectionString });
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            string? overview = null;
            await Scheduling.QueueContract.Eventually.HoldsAsync(async () =>
            {
                try { overview = await http.GetStringAsync("/"); return true; }
                catch (HttpRequestException) when (!process.HasExited) { return false; } // not listening yet; an exited tool fails the test
            }, "the dashboard answers");
            Assert.Contains(">media</a>", overview, StringComparison.Ordinal);
            var job = await http.GetStringAsync($"/jobs/{id}");
            Assert.Contains("render in queue media", job, StringComparison.Ordinal);
            Assert.DoesNotContain("<form method=\"post\"", job, StringComparison.Ordinal); // --read-only
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        var refused = await CliAsync("dashboard", "--schema", queue.Schema, "--urls", "http://0.0.0.0:5080");
        Assert.Equal(2, refused.Exit);
        Assert.Contains("is not a loopback address", refused.Err, StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Jobs_show_prints_the_progress_a_heartbeat_wrote_and_the_result_a_success_stored()
    {
        var queue = await database.NewQueueAsync();
        var schema = queue.Schema;
        await queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k")]);
        var jobs = await queue.AcquireAsync(new AcquireRequest("default", "w", 2, TimeSpan.FromMinutes(1)));
        await queue.HeartbeatAsync("w", [jobs[0].Lease], TimeSpan.FromMinutes(1), [new JobProgressUpdate(jobs[0].Lease, new JobProgress(0.4, "copying", null))]);
        await queue.AcknowledgeAsync([JobAck.Success(jobs[1].Lease) with { ResultJson = """{"rows":7}""" }]);

        string Id(AcquiredJob job) => job.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Matches(@"(?m)^progress\s+40%, copying, at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", (await CliAsync("jobs", "show", Id(jobs[0]), "--schema", schema)).Out);
        Assert.Matches(@"(?m)^result\s+\{""rows"": 7\}$", (await CliAsync("jobs", "show", Id(jobs[1]), "--schema", schema)).Out);
    }

    [Fact]
    public async Task Jobs_show_says_when_a_running_job_is_expected_to_finish_from_its_history()
    {
        var schema = (await database.NewQueueAsync()).Schema;
        var history = new PostgresRunHistory(database.DataSource, new PostgresQueueOptions { Schema = schema });
        var allocator = new ResourceAllocator(history);
        var queue = new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = schema }, allocator: allocator);
        await history.RecordAsync([new RunOutcome("etl", allocator.HashCommand("python load.py")!, null, 1024, 800, 100, TimeSpan.FromSeconds(90), 0, false, DateTimeOffset.UtcNow)]);
        await queue.EnqueueAsync(new JobRequest("k") { Definition = new JobDefinition("etl", 1024), Command = "python load.py" });
        var job = Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w", 1, TimeSpan.FromMinutes(5))));

        var info = (await queue.GetJobAsync(job.Id))!;
        Assert.Equal(info.AttemptedAt + TimeSpan.FromSeconds(90), info.ExpectedFinishAt);
        var shown = (await CliAsync("jobs", "show", job.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--schema", schema)).Out;
        Assert.Matches(@"(?m)^finishes by\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(expected, from its history\)$", shown);
        Assert.Matches(@"(?m)^allocation\s.*; usually done within 90 s\)$", shown);
    }

    [Fact]
    public async Task Recurring_set_pause_resume_and_remove_change_the_stored_jobs_and_notify_every_host()
    {
        var queue = await database.NewQueueAsync();
        var schema = queue.Schema;
        await using var listener = await database.DataSource.OpenConnectionAsync();
        var notified = new List<string>();
        listener.Notification += (_, e) => notified.Add(e.Payload);
        await using (var listen = new Npgsql.NpgsqlCommand($"LISTEN \"{queue.NotificationChannel}\"", listener)) await listen.ExecuteNonQueryAsync();

        var set = await CliAsync("recurring", "set", "nightly-export", "--cron", "0 3 * * *", "--kind", "export", "--payload", "{\"full\":true}", "--time-zone", "Europe/Berlin", "--schema", schema);
        Assert.Equal((0, "recurring job 'nightly-export' added"), (set.Exit, set.Out.Trim()));
        Assert.Equal("recurring job 'nightly-export' updated", (await CliAsync("recurring", "set", "nightly-export", "--cron", "30 3 * * *", "--kind", "export", "--schema", schema)).Out.Trim());
        Assert.Equal(0, (await CliAsync("recurring", "pause", "nightly-export", "--schema", schema)).Exit);

        var stored = Assert.Single(await queue.ListRecurringJobsAsync());
        Assert.Equal(("30 3 * * *", "export", "UTC", true, (string?)null), (stored.Cron, stored.Kind, stored.TimeZone, stored.Paused, stored.PayloadJson));
        Assert.Matches(@"(?m)^nightly-export\s+30 3 \* \* \*\s+UTC\s+export\s+default\s+paused", (await CliAsync("recurring", "--schema", schema)).Out);
        Assert.Equal(0, (await CliAsync("recurring", "resume", "nightly-export", "--schema", schema)).Exit);
        Assert.False(Assert.Single(await queue.ListRecurringJobsAsync()).Paused);

        var bad = await CliAsync("recurring", "set", "broken", "--cron", "every night", "--kind", "export", "--schema", schema);
        Assert.Equal(2, bad.Exit); // bad usage, as for any invalid argument
        Assert.Contains("job.Cron", bad.Err, StringComparison.Ordinal);
        Assert.Equal(0, (await CliAsync("recurring", "remove", "nightly-export", "--schema", schema)).Exit);
        Assert.Equal(5, (await CliAsync("recurring", "remove", "nightly-export", "--schema", schema)).Exit);
        Assert.Empty(await queue.ListRecurringJobsAsync());

        // Each of the five changes notified the channel every host listens on, in its own transaction.
        while (notified.Count < 5 && await listener.WaitAsync(TimeSpan.FromSeconds(30))) { }
        Assert.Equal(Enumerable.Repeat("#recurring", 5), notified);
    }

    [Fact]
    public async Task Batches_show_prints_the_live_counts_and_jobs_list_filters_by_batch()
    {
        var queue = await database.NewQueueAsync();
        var schema = queue.Schema;
        var batch = await queue.EnqueueBatchAsync(new BatchRequest([new JobRequest("m"), new JobRequest("m"), new JobRequest("m")]) { OnComplete = new JobRequest("done") });
        var one = (await queue.AcquireAsync(new AcquireRequest("default", "w", 1, TimeSpan.FromMinutes(1))))[0];
        await queue.AcknowledgeAsync([JobAck.Success(one.Lease)]);
        var id = batch.BatchId.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var show = await CliAsync("batches", "show", id, "--schema", schema);
        Assert.Equal(0, show.Exit);
        Assert.Matches(@"(?m)^members\s+3: 2 pending, 1 succeeded, 0 failed, 0 cancelled$", show.Out);
        Assert.Matches(@"(?m)^state\s+open$", show.Out);
        Assert.Matches($@"(?m)^on complete\s+job {batch.OnCompleteJobId}$", show.Out);
        var listed = await CliAsync("jobs", "list", "--batch", id, "--schema", schema, "--json");
        Assert.Equal(4, System.Text.Json.JsonDocument.Parse(listed.Out).RootElement.GetProperty("jobs").GetArrayLength()); // three members and the callback
        Assert.Equal(3, (await CliAsync("batches", "show", "999999", "--schema", schema)).Exit);
        Assert.Equal(2, (await CliAsync("batches", "show", "x", "--schema", schema)).Exit);
    }

    [Fact]
    public async Task Queues_limit_and_unlimit_set_what_the_claim_enforces_and_the_listing_shows_it()
    {
        var queue = await database.NewQueueAsync();
        var schema = queue.Schema;
        await queue.EnqueueManyAsync([new JobRequest("k") { Queue = "api", PartitionKey = "t1" }, new JobRequest("k") { Queue = "api", PartitionKey = "t1" }]);

        var limited = await CliAsync("queues", "limit", "api", "--rate", "100/1m", "--rate-per-key", "5/500ms", "--concurrency-per-key", "1", "--schema", schema);
        Assert.Equal((0, "queue 'api' limited: rate 100/1m, per key 5/500ms, 1 running per key"), (limited.Exit, limited.Out.Trim()));
        Assert.Single(await queue.AcquireAsync(new AcquireRequest("api", "w", 10, TimeSpan.FromMinutes(1)))); // a mutex per key
        Assert.Matches(@"(?m)^api\s.*\srunning\s+rate 100/1m, per key 5/500ms, 1 running per key$", (await CliAsync("queues", "--schema", schema)).Out);
        Assert.Equal(0, (await CliAsync("queues", "limit", "idle", "--fair-keys", "--schema", schema)).Exit);
        using (var listing = JsonDocument.Parse((await CliAsync("queues", "--schema", schema, "--json")).Out))
            Assert.Contains(listing.RootElement.EnumerateArray(), e => e.GetProperty("queue").GetString() == "idle" && e.GetProperty("limits").GetProperty("fairKeys").GetBoolean()); // listed even when empty

        Assert.Equal(0, (await CliAsync("queues", "unlimit", "api", "--schema", schema)).Exit);
        Assert.Equal(5, (await CliAsync("queues", "unlimit", "api", "--schema", schema)).Exit); // it had none left
        Assert.Single(await queue.AcquireAsync(new AcquireRequest("api", "w", 10, TimeSpan.FromMinutes(1))));

        var noLimit = await CliAsync("queues", "limit", "api", "--schema", schema);
        Assert.Equal(2, noLimit.Exit);
        Assert.Contains("give at least one of --rate", noLimit.Err, StringComparison.Ordinal);
        var badRate = await CliAsync("queues", "limit", "api", "--rate", "10/fortnight", "--schema", schema);
        Assert.Equal(2, badRate.Exit);
        Assert.Contains("--rate: '10/fortnight' has no period unit", badRate.Err, StringComparison.Ordinal);
        Assert.Contains("is out of range", (await CliAsync("queues", "limit", "api", "--rate", "0/s", "--schema", schema)).Err, StringComparison.Ordinal);
        Assert.Equal(2, (await CliAsync("queues", "limit", "api", "--concurrency-per-key", "0", "--schema", schema)).Exit);
    }

    [Fact]
    public async Task A_command_on_a_schema_that_was_never_migrated_says_to_migrate_it()
    {
        var schema = database.NewSchema();
        foreach (var args in new[] { new[] { "queues" }, ["jobs", "list"], ["jobs", "show", "1"], ["ara", "report"] })
        {
            var result = await CliAsync([.. args, "--schema", schema]);
            Assert.True(result.Exit == 3, $"{string.Join(' ', args)}: exit {result.Exit}: {result.Err}");
            Assert.Contains($"run 'scheduling migrate --schema {schema}' first", result.Err, StringComparison.Ordinal);
        }

        var status = await CliAsync("status", "--schema", schema);
        Assert.Equal(5, status.Exit);
        Assert.Contains($"run 'scheduling migrate --schema {schema}'", status.Out, StringComparison.Ordinal);
    }
}
