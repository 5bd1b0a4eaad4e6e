using System.Text.Json;
using Xunit;

namespace Scheduling.Stagger.Tests;

/// <summary>The built `scheduling` CLI, run as a process.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("scheduling-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Exit, string Out, string Err)> RunAsync(params string[] args) => Scheduling.QueueContract.ToolProcess.RunAsync("Scheduling.Cli.dll", args);

    private string Write(string name, object content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content as string ?? JsonSerializer.Serialize(content));
        return path;
    }

    [Fact]
    public async Task Plan_prints_json_assignments_with_the_peak_before_and_after_and_check_reads_it_back()
    {
        var jobs = Write("jobs.json", new { jobs = JobSets.Twenty.Select(j => new { name = j.Name, cron = j.Cron, durationSeconds = j.ExpectedDuration.TotalSeconds }) });

        var (exit, output, _) = await RunAsync("stagger", "plan", "--input", jobs, "--json");

        Assert.Equal(0, exit);
        using var plan = JsonDocument.Parse(output);
        Assert.Equal(19, plan.RootElement.GetProperty("unstaggeredPeakConcurrency").GetInt32());
        Assert.True(plan.RootElement.GetProperty("peakConcurrency").GetInt32() <= 5);
        var first = plan.RootElement.GetProperty("assignments")[0];
        Assert.Equal("sync-orders", first.GetProperty("name").GetString());
        Assert.Equal($"{first.GetProperty("offsetSeconds").GetInt32()} * * * * *", first.GetProperty("effectiveCron").GetString());
        Assert.Equal("planned", first.GetProperty("source").GetString());

        var (checkExit, checkOutput, _) = await RunAsync("stagger", "check", "--input", Write("plan.json", output), "--json");
        Assert.Equal(0, checkExit);
        using var report = JsonDocument.Parse(checkOutput);
        Assert.Equal(plan.RootElement.GetProperty("peakConcurrency").GetInt32(), report.RootElement.GetProperty("PeakConcurrency").GetInt32());

        var (tableExit, table, _) = await RunAsync("stagger", "plan", "--input", jobs);
        Assert.Equal(0, tableExit);
        Assert.StartsWith("job", table, StringComparison.Ordinal);
        Assert.Contains("unstaggered 19", table, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_input_and_bad_usage_exit_with_distinct_codes_and_say_why()
    {
        var (usage, _, usageErr) = await RunAsync("stagger", "plan");
        Assert.Equal(2, usage);
        Assert.Contains("missing --input", usageErr, StringComparison.Ordinal);

        var (missing, _, missingErr) = await RunAsync("stagger", "plan", "--input", Path.Combine(_dir, "nope.json"));
        Assert.Equal(3, missing);
        Assert.Contains("nope.json", missingErr, StringComparison.Ordinal);

        var bad = Write("bad.json", """{"jobs":[{"name":"a","cron":"61 * * * *","durationSeconds":5}]}""");
        var (invalid, _, invalidErr) = await RunAsync("stagger", "plan", "--input", bad);
        Assert.Equal(3, invalid);
        Assert.Contains("Minutes", invalidErr, StringComparison.Ordinal);
    }
}
