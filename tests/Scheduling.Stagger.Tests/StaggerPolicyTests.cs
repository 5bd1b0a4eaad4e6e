using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Scheduling.Stagger.Tests;

public sealed class StaggerPolicyTests
{
    private static StaggerPolicy Enabled(Action<StaggerOptions>? configure = null)
    {
        var options = new StaggerOptions { Enabled = true };
        foreach (var (job, offset) in JobSets.IncidentOffsets) options.SetOffset(job, offset);
        configure?.Invoke(options);
        return new StaggerPolicy(options);
    }

    [Theory]
    [InlineData("sync-orders", "* * * * *", "0 * * * * *")]
    [InlineData("sync-inventory", "* * * * *", "15 * * * * *")]
    [InlineData("refresh-prices", "* * * * *", "30 * * * * *")]
    [InlineData("poll-payments", "* * * * *", "45 * * * * *")]
    [InlineData("rollup-metrics", "*/5 * * * *", "5 */5 * * * *")]
    [InlineData("expire-sessions", "*/5 * * * *", "25 */5 * * * *")]
    [InlineData("rebuild-search", "*/10 * * * *", "10 */10 * * * *")]
    [InlineData("send-digests", "*/10 * * * *", "40 */10 * * * *")]
    public void The_incidents_offsets_become_the_seconds_field(string job, string cron, string effective)
    {
        var result = Enabled().Apply(job, cron);
        Assert.Equal(effective, result.EffectiveExpression);
        Assert.Equal(StaggerSource.Configured, result.Source);
        Assert.Equal(JobSets.IncidentOffsets[job], result.OffsetSeconds);
    }

    [Fact]
    public void The_incidents_offsets_still_collide_where_schedules_meet_and_not_where_offsets_merely_repeat()
    {
        var staggered = JobSets.Incident.Select(j => j with { Cron = Enabled().Apply(j.Name, j.Cron).EffectiveExpression }).ToArray();
        var report = CollisionAnalyzer.Analyze(staggered);

        // Different offsets, still meeting: sync-orders (:00, 12 s) overlaps rebuild-search (:10) every 10 minutes.
        var pair = Assert.Single(report.Pairs, p => (p.First, p.Second) is ("sync-orders", "rebuild-search") or ("rebuild-search", "sync-orders"));
        Assert.Equal(144, pair.OverlapsPerDay);
        Assert.Equal(0, pair.SameSecondPerDay);
        // No two of the eight start in the same second any more.
        Assert.All(report.Pairs, p => Assert.Equal(0, p.SameSecondPerDay));
        Assert.True(report.PeakConcurrency < CollisionAnalyzer.Analyze(JobSets.Incident).PeakConcurrency);
    }

    [Fact]
    public void Same_offset_jobs_that_never_share_a_minute_do_not_collide()
    {
        var report = CollisionAnalyzer.Analyze([
            new StaggerJob("even-minutes", "15 */2 * * * *", TimeSpan.FromSeconds(20)),
            new StaggerJob("odd-minutes", "15 1-59/2 * * * *", TimeSpan.FromSeconds(20)),
        ]);
        Assert.Empty(report.Pairs);
        Assert.Equal(1, report.PeakConcurrency);
    }

    [Fact]
    public void Every_minute_and_hourly_jobs_with_different_offsets_meet_once_an_hour()
    {
        var report = CollisionAnalyzer.Analyze([
            new StaggerJob("every-minute", "15 * * * * *", TimeSpan.FromSeconds(20)),
            new StaggerJob("hourly", "20 0 * * * *", TimeSpan.FromSeconds(5)),
        ]);
        var pair = Assert.Single(report.Pairs);
        Assert.Equal(24, pair.OverlapsPerDay);
        Assert.Equal(2, report.PeakConcurrency);
        Assert.Equal(new DateTimeOffset(2026, 1, 5, 0, 0, 20, TimeSpan.Zero), report.PeakInstants[0]);
    }

    [Fact]
    public void Disabled_flag_six_field_input_and_strategies()
    {
        Assert.Equal(new StaggerResult("sync-orders", "* * * * *", "0 * * * * *", 0, StaggerSource.Disabled), new StaggerPolicy(new StaggerOptions().SetOffset("sync-orders", 15)).Apply("sync-orders", "* * * * *"));
        Assert.Equal(new StaggerResult("x", "7 */5 * * * *", "7 */5 * * * *", 7, StaggerSource.Explicit), Enabled().Apply("x", "7 */5 * * * *"));
        Assert.Equal(StaggerSource.Hashed, Enabled().Apply("unknown-job", "0 3 * * *").Source);
        Assert.Equal($"{StaggerHash.Offset("unknown-job")} 0 3 * * *", Enabled().Apply("unknown-job", "0 3 * * *").EffectiveExpression);
        Assert.Equal(new StaggerResult("unknown-job", "@hourly", "0 0 * * * *", 0, StaggerSource.Default), Enabled(o => o.DefaultStrategy = StaggerStrategy.None).Apply("unknown-job", "@hourly"));
    }

    [Theory]
    [InlineData("* * * *", "has 4 fields")]
    [InlineData("0 12 * * * 2026", "seconds first")]
    [InlineData("61 * * * *", "Minutes")]
    [InlineData("0 0 0 * * * *", "has 7 fields")]
    [InlineData("", "required")]
    public void Invalid_expressions_are_rejected_with_the_reason(string cron, string reason)
    {
        var ex = Assert.Throws<ArgumentException>(() => Enabled().Apply("job", cron));
        Assert.Equal("cronExpression", ex.ParamName);
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hash_offsets_match_the_pinned_version_1_vectors()
    {
        // SHA-256 of the UTF-8 name, first four bytes big-endian, modulo 60. Changing these moves every hashed job.
        Assert.Equal(1, StaggerHash.Version);
        Assert.Equal(50, StaggerHash.Offset("a")); // sha256("a") starts ca978112: 0xca978112 % 60 = 50
        Assert.Equal(52, StaggerHash.Offset("sync-orders"));
        Assert.Equal(42, StaggerHash.Offset("nightly-backup"));
        Assert.Equal(7, StaggerHash.Offset("ünïcode-job"));
    }

    internal static int HashOf(string name)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name));
        return (int)(((uint)hash[0] << 24 | (uint)hash[1] << 16 | (uint)hash[2] << 8 | hash[3]) % 60);
    }

    [Fact]
    public void Options_bind_from_configuration_keys_that_environment_variables_produce()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Scheduling:Stagger:Enabled"] = "true",
            ["Scheduling:Stagger:Offsets:sync-inventory"] = "15",
            ["Scheduling:Stagger:DefaultStrategy"] = "None",
        }).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddLogging();
        services.AddScheduling(s => s.UseStagger());
        using var provider = services.BuildServiceProvider();

        var policy = provider.GetRequiredService<IStaggerPolicy>();

        Assert.Equal(new StaggerResult("sync-inventory", "* * * * *", "15 * * * * *", 15, StaggerSource.Configured), policy.Apply("sync-inventory", "* * * * *"));
        Assert.Equal(StaggerSource.Default, policy.Apply("other", "* * * * *").Source);
    }

    [Theory]
    [InlineData("60", "must be from 0 to 59 (was 60)")]
    [InlineData("-1", "must be from 0 to 59 (was -1)")]
    [InlineData("abc", "must be an integer from 0 to 59 (was 'abc')")]
    [InlineData("1.5", "must be an integer from 0 to 59 (was '1.5')")]
    [InlineData("", "must be an integer from 0 to 59 (was '')")]
    public void Start_up_validation_names_the_key_and_the_reason_and_lenient_mode_falls_back(string offset, string reason)
    {
        var strict = Validate(o => o.Offsets["sync-orders"] = offset);
        Assert.Contains($"Scheduling:Stagger:Offsets:sync-orders {reason}.", strict.Failures!);

        var lenient = new StaggerPolicy(new StaggerOptions { Enabled = true, Lenient = true, Offsets = { ["sync-orders"] = offset } });
        Assert.Equal(StaggerSource.Hashed, lenient.Apply("sync-orders", "* * * * *").Source);
        Assert.True(Validate(o => { o.Offsets["sync-orders"] = offset; o.Lenient = true; }).Succeeded);
    }

    [Fact]
    public void Start_up_validation_rejects_duplicate_names_and_invalid_expressions_of_recurring_jobs()
    {
        var recurring = new RecurringJobOptions();
        recurring.Jobs.Add(new RecurringJob("a", "* * * * *", new JobRequest("k")));
        recurring.Jobs.Add(new RecurringJob("a", "*/5 * * * *", new JobRequest("k")));
        recurring.Jobs.Add(new RecurringJob("b", "not cron", new JobRequest("k")));

        var result = new StaggerOptionsValidator(Options.Create(recurring)).Validate(null, new StaggerOptions());

        Assert.Contains(result.Failures!, f => f.Contains("'a' is registered more than once", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Recurring job 'b': 'not cron' has 2 fields", StringComparison.Ordinal));
    }

    private static ValidateOptionsResult Validate(Action<StaggerOptions> configure)
    {
        var options = new StaggerOptions { Enabled = true };
        configure(options);
        return new StaggerOptionsValidator(Options.Create(new RecurringJobOptions())).Validate(null, options);
    }
}
