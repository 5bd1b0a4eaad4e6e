using System.Net;
using Xunit;

namespace Scheduling.Dashboard.Tests;

/// <summary>Closed by default outside Development, the named policy, anti-forgery on every action, read-only mode, nothing from a job rendered as HTML.</summary>
public sealed class SecurityTests
{
    [Fact]
    public async Task Outside_development_without_a_policy_every_page_and_action_is_refused_with_the_reason()
    {
        await using var app = await DashboardApp.StartAsync("Production");
        var id = (await app.Queue.EnqueueAsync(new JobRequest("k"))).JobId;

        foreach (var path in new[] { "/scheduling", "/scheduling/jobs", $"/scheduling/jobs/{id}", "/scheduling/hosts", "/scheduling/assets/dashboard.css" })
        {
            var (status, body) = await app.GetAsync(path);
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Contains("needs an authorization policy", body, StringComparison.Ordinal);
            Assert.Contains("Production", System.Net.WebUtility.HtmlDecode(body), StringComparison.Ordinal);
        }

        using var cancel = await app.PostAsync($"/scheduling/jobs/{id}/cancel", []);
        Assert.Equal(HttpStatusCode.Forbidden, cancel.StatusCode);
        Assert.Equal(JobState.Available, (await app.Queue.GetJobAsync(id))!.State);
    }

    [Fact]
    public async Task With_a_policy_only_users_it_admits_get_in_and_their_actions_are_audited_by_name()
    {
        await using var app = await DashboardApp.StartAsync("Production", d => d.AuthorizationPolicy = "ops", withPolicy: true);
        var id = (await app.Queue.EnqueueAsync(new JobRequest("k"))).JobId;
        static Action<HttpRequestMessage> As(string user, string role) => r => { r.Headers.Add("X-Test-User", user); r.Headers.Add("X-Test-Role", role); };

        Assert.Equal(HttpStatusCode.Unauthorized, (await app.GetAsync("/scheduling")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await app.GetAsync("/scheduling", As("eve", "guest"))).Status);
        Assert.Equal(HttpStatusCode.OK, (await app.GetAsync("/scheduling", As("alice", "ops"))).Status);

        using var cancelled = await app.PostAsync($"/scheduling/jobs/{id}/cancel", [], tokenFrom: $"/scheduling/jobs/{id}", request: As("alice", "ops"));
        Assert.Equal(HttpStatusCode.Redirect, cancelled.StatusCode);
        Assert.Equal(JobState.Cancelled, (await app.Queue.GetJobAsync(id))!.State);
        var audit = Assert.Single(app.Logs.GetSnapshot(), r => r.Category == "Scheduling.Dashboard");
        Assert.Contains("alice ran 'cancel' on job(s) " + id, audit.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_action_without_the_anti_forgery_token_is_refused_and_changes_nothing()
    {
        await using var app = await DashboardApp.StartAsync();
        var id = (await app.Queue.EnqueueAsync(new JobRequest("k"))).JobId;

        using var forged = await app.PostAsync($"/scheduling/jobs/{id}/cancel", []);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Contains("anti-forgery token", await forged.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var forgedBulk = await app.PostAsync("/scheduling/jobs/bulk", [new("action", "cancel")]);
        Assert.Equal(HttpStatusCode.BadRequest, forgedBulk.StatusCode);
        Assert.Equal(JobState.Available, (await app.Queue.GetJobAsync(id))!.State);

        using var real = await app.PostAsync($"/scheduling/jobs/{id}/cancel", [], tokenFrom: $"/scheduling/jobs/{id}");
        Assert.Equal(HttpStatusCode.Redirect, real.StatusCode);
        Assert.StartsWith($"/scheduling/jobs/{id}?done=", real.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(JobState.Cancelled, (await app.Queue.GetJobAsync(id))!.State);
    }

    [Fact]
    public async Task Read_only_shows_no_action_and_refuses_every_action()
    {
        await using var app = await DashboardApp.StartAsync(dashboard: d => d.ReadOnly = true);
        var id = (await app.Queue.EnqueueAsync(new JobRequest("k"))).JobId;

        var (status, page) = await app.GetAsync($"/scheduling/jobs/{id}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.DoesNotContain("<form method=\"post\"", page, StringComparison.Ordinal);
        Assert.Contains("Read-only", page, StringComparison.Ordinal);
        using var refused = await app.PostAsync($"/scheduling/jobs/{id}/cancel", []);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(JobState.Available, (await app.Queue.GetJobAsync(id))!.State);
    }

    [Fact]
    public async Task Hostile_text_in_a_payload_an_error_or_a_kind_is_shown_as_text_never_as_markup()
    {
        await using var app = await DashboardApp.StartAsync();
        const string hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
        var id = (await app.Queue.EnqueueAsync(new JobRequest("k<b>bold</b>", new { note = hostile }) { Description = hostile, Command = hostile, PartitionKey = "\"><script>alert(3)</script>" })).JobId;
        var store = (IJobWorkerStore)app.Queue;
        var job = Assert.Single(await store.AcquireAsync(new AcquireRequest(JobRequest.DefaultQueue, "w", 1, TimeSpan.FromMinutes(1))));
        await store.FailAsync(job.Lease, hostile);

        var (_, detail) = await app.GetAsync($"/scheduling/jobs/{id}");
        var (_, list) = await app.GetAsync("/scheduling/jobs");
        foreach (var page in new[] { detail, list })
        {
            Assert.DoesNotContain("<script>alert", page, StringComparison.Ordinal);
            Assert.DoesNotContain("<img src=x", page, StringComparison.Ordinal);
            Assert.DoesNotContain("<b>bold</b>", page, StringComparison.Ordinal);
        }

        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", detail, StringComparison.Ordinal); // shown, as text
        Assert.Contains("k&lt;b&gt;bold&lt;/b&gt;", list, StringComparison.Ordinal);
        using var response = await app.Client.GetAsync($"/scheduling/jobs/{id}");
        Assert.Contains("script-src 'self'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal); // inline script would not run anyway
    }

    [Fact]
    public async Task Options_that_cannot_work_stop_the_app_at_start_naming_the_setting()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            DashboardApp.StartAsync(dashboard: d => { d.TraceLinkTemplate = "javascript:alert({traceId})"; d.BulkLimit = 0; }));
        Assert.Contains("Scheduling:Dashboard:TraceLinkTemplate must be an http or https address", error.Message, StringComparison.Ordinal);
        Assert.Contains("BulkLimit must be between 1 and 100,000", error.Message, StringComparison.Ordinal);
    }
}
