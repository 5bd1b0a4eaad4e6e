using System.Text.Json.Nodes;
using Xunit;

namespace Scheduling.Testing.Tests;

public sealed record Greeting(string FullName, string Language);

public sealed class PayloadUpgradeTests
{
    private static TestHost Host(List<Greeting> seen) => new(TestingMode.Manual, s => s
        // v0 {"name"} -> v1 {"fullName"} -> v2 {"fullName","language"}: what two older deploys enqueued
        .AddPayloadUpgrade("greet", 0, old => new JsonObject { ["fullName"] = old?["name"]?.GetValue<string>() })
        .AddPayloadUpgrade("greet", 1, old => { old!["language"] = "en"; return old; })
        .AddHandler<Greeting>("greet", (ctx, _) =>
        {
            lock (seen) seen.Add(ctx.Payload);
            return Task.CompletedTask;
        }));

    [Fact]
    public async Task Payloads_of_older_versions_are_upgraded_step_by_step_before_the_handler_reads_them()
    {
        var seen = new List<Greeting>();
        using var host = Host(seen);
        await host.Queue.EnqueueManyAsync(
        [
            new JobRequest("greet", new { name = "Ada" }),                                              // version 0
            new JobRequest("greet", new { fullName = "Grace" }) { PayloadVersion = 1 },
            new JobRequest("greet", new Greeting("Edsger", "nl")) { PayloadVersion = 2 },               // current: untouched
        ]);

        var summary = await host.Runner.RunPendingAsync();

        Assert.Equal(3, summary.Succeeded);
        Assert.Equal([new Greeting("Ada", "en"), new Greeting("Grace", "en"), new Greeting("Edsger", "nl")], seen);
    }

    [Fact]
    public async Task A_version_newer_than_the_host_knows_is_retried_and_a_gap_in_the_steps_is_permanent()
    {
        var seen = new List<Greeting>();
        using var host = Host(seen);
        var newer = (await host.Queue.EnqueueAsync(new JobRequest("greet", new { }) { PayloadVersion = 3, MaxAttempts = 5 })).JobId;

        var once = await host.Runner.RunPendingAsync(new TestRunOptions { SkipBackoff = false });

        Assert.Equal(JobState.Scheduled, Assert.Single(once.Runs).State); // retried: a newer host may take it
        Assert.Contains("payload version 3; this host's handler reads up to version 2", Assert.Single(once.Failures).Message, StringComparison.Ordinal);
        Assert.Empty(seen);

        using var gap = new TestHost(TestingMode.Manual, s => s
            .AddPayloadUpgrade("greet", 1, old => old)
            .AddHandler<Greeting>("greet", (_, _) => Task.CompletedTask));
        var old = (await gap.Queue.EnqueueAsync(new JobRequest("greet", new { name = "x" }))).JobId;
        await gap.Runner.RunPendingAsync();
        var dead = (await gap.Queue.GetJobAsync(old))!;
        Assert.Equal(JobState.Dead, dead.State);
        Assert.Contains("no upgrade from version 0 is registered", Assert.Single(dead.Errors).Message, StringComparison.Ordinal);
        Assert.Equal("request.PayloadVersion", (await Assert.ThrowsAnyAsync<ArgumentException>(() => gap.Queue.EnqueueAsync(new JobRequest("greet") { PayloadVersion = -1 }).AsTask())).ParamName);
        Assert.Equal((1, 3), ((await host.Queue.GetJobAsync(newer))!.Attempt, (await host.Queue.GetJobAsync(newer))!.PayloadVersion));
    }
}
