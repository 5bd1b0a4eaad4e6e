using System.Text.Json;
using System.Text.Json.Nodes;
using Scheduling.Stagger;

namespace Scheduling.Cli;

/// <summary>The operator CLI. Exit codes: 0 success, 2 usage error, 3 bad input or not found, 4 database unreachable or refused, 5 nothing changed.</summary>
internal static class Cli
{
    public const int Ok = 0, Usage = 2, BadInput = 3, DatabaseError = 4;

    private const string Help = """
        usage (database commands take --connection CONN or SCHEDULING_CONNECTION, --schema NAME, --json, --verbose):
          scheduling migrate [--dry-run]                         apply (or print) pending migrations
          scheduling status                                      the schema's migration version
          scheduling queues                                      per queue: available, scheduled, running, dead, oldest due, throughput
          scheduling jobs list [--queue Q] [--kind K] [--state S] [--since T] [--until T] [--limit N] [--before-id ID]
          scheduling jobs show|cancel|retry|redrive ID
          scheduling stagger plan  --input jobs.json [--json]   choose seconds offsets that flatten the peak
          scheduling stagger check --input plan.json [--json]   the collision analysis of a given plan
          scheduling ara report [--connection CONN] [--schema NAME] [--from DATE] [--to DATE] [--ceiling-mb N] [--json]
                                                                 ARA's impact per day and definition (default: the last 7 days;
                                                                 the connection may come from SCHEDULING_CONNECTION)

        jobs.json: {"jobs":[{"name":"...","cron":"*/5 * * * *","durationSeconds":12,"timeZone":"Europe/Berlin"}, ...]}
        plan.json: the output of 'plan --json', or jobs.json with the crons to check
        """;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        if (args.Length >= 2 && args[0] == "ara" && args[1] == "report") return await AraReport.RunAsync(args, output, error);
        if (OperatorCommands.Handles(args)) return await OperatorCommands.RunAsync(args, output, error);
        if (args.Length < 2 || args[0] != "stagger" || args[1] is not ("plan" or "check"))
        {
            await error.WriteLineAsync(args.Length == 0 || args[0] is "-h" or "--help" or "help" ? Help : $"unknown command '{string.Join(' ', args.Take(2))}'\n{Help}");
            return Usage;
        }

        var input = Option(args, "--input");
        if (input is null)
        {
            await error.WriteLineAsync($"missing --input FILE\n{Help}");
            return Usage;
        }

        var asJson = args.Contains("--json");
        try
        {
            var jobs = ReadJobs(await File.ReadAllTextAsync(input));
            if (args[1] == "plan")
            {
                var plan = StaggerPlanner.Plan(jobs);
                if (asJson) await output.WriteLineAsync(PlanJson(plan, jobs).ToJsonString(Json));
                else
                {
                    await output.WriteAsync(StaggerSummary.Table(plan.Assignments));
                    await output.WriteLineAsync($"peak concurrency {plan.PeakConcurrency} (unstaggered {plan.UnstaggeredPeakConcurrency}, name hash {plan.HashedPeakConcurrency}, lower bound {plan.LowerBound}); kept: {plan.Strategy}");
                }
            }
            else
            {
                var report = CollisionAnalyzer.Analyze(jobs);
                if (asJson) await output.WriteLineAsync(JsonSerializer.Serialize(report, Json));
                else await output.WriteAsync(StaggerSummary.Collisions(report));
            }

            return Ok;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or ArgumentException or InvalidDataException or TimeZoneNotFoundException)
        {
            await error.WriteLineAsync($"{input}: {ex.Message}");
            return BadInput;
        }
    }

    /// <summary>The database of a database command: --connection, else SCHEDULING_CONNECTION.</summary>
    internal static string? Connection(string[] args) => Option(args, "--connection") ?? Environment.GetEnvironmentVariable("SCHEDULING_CONNECTION");

    /// <summary>The value after <paramref name="name"/> in <paramref name="args"/>, or null.</summary>
    internal static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
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
            ["source"] = a.Source.ToString().ToLowerInvariant(),
            ["durationSeconds"] = jobs[i].ExpectedDuration.TotalSeconds,
        }).ToArray()),
        ["peakConcurrency"] = plan.PeakConcurrency,
        ["unstaggeredPeakConcurrency"] = plan.UnstaggeredPeakConcurrency,
        ["hashedPeakConcurrency"] = plan.HashedPeakConcurrency,
        ["lowerBound"] = plan.LowerBound,
        ["strategy"] = plan.Strategy,
    };
}
