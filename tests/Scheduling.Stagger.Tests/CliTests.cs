using System.Text.Json;
using Xunit;

namespace Scheduling.Stagger.Tests;

/// <summary>The built `scheduling` CLI, run as a process.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("scheduling-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Exit, string Out, string Err)> RunAsync(params string[] args) => Scheduling.QueueContract.ToolProcess.RunAsync("Scheduling.Cli.dll", args);

    // A database that must never be reached: a command that gets this far has ignored a parse error.
    private static readonly Dictionary<string, string> Unreachable = new() { ["SCHEDULING_CONNECTION"] = "Host=127.0.0.1;Port=1;Timeout=1" };

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
        Assert.Equal(plan.RootElement.GetProperty("peakConcurrency").GetInt32(), report.RootElement.GetProperty("peakConcurrency").GetInt32());

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
        Assert.Contains("'--input' is required", usageErr, StringComparison.Ordinal);

        var (missing, _, missingErr) = await RunAsync("stagger", "plan", "--input", Path.Combine(_dir, "nope.json"));
        Assert.Equal(3, missing);
        Assert.Contains("nope.json", missingErr, StringComparison.Ordinal);

        var bad = Write("bad.json", """{"jobs":[{"name":"a","cron":"61 * * * *","durationSeconds":5}]}""");
        var (invalid, _, invalidErr) = await RunAsync("stagger", "plan", "--input", bad);
        Assert.Equal(3, invalid);
        Assert.Contains("Minutes", invalidErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_misspelt_option_is_an_error_with_the_nearest_name_and_never_falls_back_to_the_environment()
    {
        var (exit, output, error) = await Scheduling.QueueContract.ToolProcess.RunAsync("Scheduling.Cli.dll", ["jobs", "list", "--conection", "Host=prod"], Unreachable);

        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains("unknown option '--conection' (did you mean '--connection'?)", error, StringComparison.Ordinal);
        Assert.DoesNotContain("cannot use the database", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "jobs", "list", "--state", "nope" }, "--state: 'nope' is not one of scheduled, available, running, succeeded, cancelled, dead, waiting")]
    [InlineData(new[] { "jobs", "list", "--state", "daed" }, "(did you mean 'dead'?)")]
    [InlineData(new[] { "jobs", "list", "--state", "5" }, "'5' is not one of")]
    [InlineData(new[] { "jobs", "list", "--limit", "0" }, "--limit must be between 1 and 10000 (was 0)")]
    [InlineData(new[] { "jobs", "list", "--since", "yesterday" }, "--since: 'yesterday' is not a date or time")]
    [InlineData(new[] { "jobs", "show", "abc" }, "'abc' is not a job id")]
    [InlineData(new[] { "jobs", "lst" }, "unknown command 'lst' (did you mean 'list'?)")]
    [InlineData(new[] { "jobs" }, "which command? list, show, cancel, retry, redrive")]
    [InlineData(new[] { "migrat" }, "unknown command 'migrat' (did you mean 'migrate'?)")]
    [InlineData(new[] { "queues", "--jsn" }, "(did you mean '--json'?)")]
    public async Task Bad_values_and_unknown_words_exit_2_before_any_database_is_touched(string[] args, string expected)
    {
        var (exit, _, error) = await Scheduling.QueueContract.ToolProcess.RunAsync("Scheduling.Cli.dll", args, Unreachable);

        Assert.Equal(2, exit);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.DoesNotContain("cannot use the database", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_and_version_exit_0_on_standard_output_and_a_bare_call_prints_help_as_a_usage_error()
    {
        var help = await RunAsync("--help");
        Assert.Equal(0, help.Exit);
        foreach (var command in new[] { "migrate", "status", "queues", "jobs", "stagger", "ara" }) Assert.Contains(command, help.Out, StringComparison.Ordinal);

        var listHelp = await RunAsync("jobs", "list", "--help");
        Assert.Equal(0, listHelp.Exit);
        Assert.Contains("--state <scheduled|available|running|succeeded|cancelled|dead|waiting|expired>", listHelp.Out, StringComparison.Ordinal);
        Assert.Contains("SCHEDULING_CONNECTION", listHelp.Out, StringComparison.Ordinal);

        var version = await RunAsync("--version");
        Assert.Equal(0, version.Exit);
        var expected = System.Reflection.Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, "Scheduling.Cli.dll")).GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .Cast<System.Reflection.AssemblyInformationalVersionAttribute>().Single().InformationalVersion;
        Assert.Equal(expected, version.Out.Trim());

        var bare = await RunAsync();
        Assert.Equal(2, bare.Exit);
        Assert.Contains("Commands:", bare.Err, StringComparison.Ordinal);
    }
}
