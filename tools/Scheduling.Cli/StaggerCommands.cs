using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scheduling.Stagger;

namespace Scheduling.Cli;

/// <summary><c>stagger plan</c> and <c>stagger check</c>: offline, over a JSON file of recurring jobs.</summary>
internal static class StaggerCommands
{
    private const string InputFormat = """
        jobs.json: {"jobs":[{"name":"...","cron":"*/5 * * * *","durationSeconds":12,"timeZone":"Europe/Berlin"}, ...]};
        a plan (the output of 'stagger plan --json') is read back too
        """;

    public static Command Create() => new("stagger", "Plan and check the seconds offsets of recurring jobs (offline).")
    {
        OnInput("plan", "Choose seconds offsets that flatten the peak concurrency.", (jobs, json, output) =>
        {
            var plan = StaggerPlanner.Plan(jobs);
            return json
                ? output.WriteLineAsync(PlanJson(plan, jobs).ToJsonString(Cli.Json))
                : output.WriteAsync(StaggerSummary.Table(plan.Assignments) +
                    $"peak concurrency {plan.PeakConcurrency} (unstaggered {plan.UnstaggeredPeakConcurrency}, name hash {plan.HashedPeakConcurrency}, lower bound {plan.LowerBound}); kept: {plan.Strategy}{Environment.NewLine}");
        }),
        OnInput("check", "The collision analysis of the given crons (or of a plan).", (jobs, json, output) =>
        {
            var report = CollisionAnalyzer.Analyze(jobs);
            return json ? output.WriteLineAsync(JsonSerializer.Serialize(report, Cli.Json)) : output.WriteAsync(StaggerSummary.Collisions(report));
        }),
    };

    private static Command OnInput(string name, string description, Func<StaggerJob[], bool, TextWriter, Task> run)
    {
        var input = new Option<FileInfo>("--input") { Description = InputFormat, Required = true, HelpName = "file" };
        var json = new Option<bool>("--json") { Description = "print JSON instead of a table" };
        var command = new Command(name, description) { input, json };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var file = parse.GetValue(input)!;
            try
            {
                await run(ReadJobs(await File.ReadAllTextAsync(file.FullName, cancellationToken)), parse.GetValue(json), parse.InvocationConfiguration.Output);
                return Cli.Ok;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or ArgumentException or InvalidDataException or TimeZoneNotFoundException)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"{file}: {ex.Message}");
                return Cli.BadInput;
            }
        });
        return command;
    }

    /// <summary>Reads "jobs" (name, cron) or a plan's "assignments" (name, effectiveCron), each with durationSeconds.</summary>
    private static StaggerJob[] ReadJobs(string text)
    {
        var root = JsonNode.Parse(text) as JsonObject ?? throw new InvalidDataException("expected a JSON object with a \"jobs\" or \"assignments\" array");
        var list = (root["jobs"] ?? root["assignments"]) as JsonArray ?? throw new InvalidDataException("expected a \"jobs\" or \"assignments\" array");
        return list.Select((node, i) =>
        {
            var job = node as JsonObject ?? throw new InvalidDataException($"jobs[{i}] is not an object");
            var name = (string?)job["name"] ?? throw new InvalidDataException($"jobs[{i}] has no \"name\"");
            var cron = (string?)(job["effectiveCron"] ?? job["cron"]) ?? throw new InvalidDataException($"jobs[{i}] ('{name}') has no \"cron\"");
            var seconds = job["durationSeconds"] is { } d ? d.GetValue<double>() : throw new InvalidDataException($"jobs[{i}] ('{name}') has no \"durationSeconds\"");
            if (seconds < 0) throw new InvalidDataException($"jobs[{i}] ('{name}') has a negative duration");
            var zone = (string?)job["timeZone"] is { } id ? TimeZoneInfo.FindSystemTimeZoneById(id) : null;
            return new StaggerJob(name, cron, TimeSpan.FromSeconds(seconds), zone);
        }).ToArray();
    }

    private static JsonObject PlanJson(StaggerPlan plan, StaggerJob[] jobs) => new()
    {
        ["assignments"] = new JsonArray(plan.Assignments.Select((a, i) => (JsonNode)new JsonObject
        {
            ["name"] = a.Name,
            ["cron"] = a.Cron,
            ["effectiveCron"] = a.EffectiveCron,
            ["offsetSeconds"] = a.OffsetSeconds,
            ["source"] = Cli.Name(a.Source),
            ["durationSeconds"] = jobs[i].ExpectedDuration.TotalSeconds,
        }).ToArray()),
        ["peakConcurrency"] = plan.PeakConcurrency,
        ["unstaggeredPeakConcurrency"] = plan.UnstaggeredPeakConcurrency,
        ["hashedPeakConcurrency"] = plan.HashedPeakConcurrency,
        ["lowerBound"] = plan.LowerBound,
        ["strategy"] = plan.Strategy,
    };
}
