using System.Globalization;
using System.Text.Json;
using Npgsql;
using Scheduling.Postgres;

namespace Scheduling.Cli;

/// <summary><c>migrate</c>, <c>status</c>, <c>queues</c> and <c>jobs ...</c> against one schema.</summary>
internal static class OperatorCommands
{
    /// <summary>Exit code when the command changed nothing (e.g. cancelling a finished job).</summary>
    public const int NothingChanged = 5;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static bool Handles(string[] args) => args.Length > 0 && args[0] is "migrate" or "status" or "queues" or "jobs";

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        var connection = Cli.Connection(args);
        if (string.IsNullOrWhiteSpace(connection))
        {
            await error.WriteLineAsync($"{args[0]}: a database is required: --connection CONNSTRING or SCHEDULING_CONNECTION.");
            return Cli.Usage;
        }

        var json = args.Contains("--json");
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(connection);
            var ops = new PostgresOperations(dataSource, Cli.Option(args, "--schema") ?? "scheduling");
            return args[0] switch
            {
                "migrate" => await MigrateAsync(ops, args.Contains("--dry-run"), json, output),
                "status" => await StatusAsync(ops, json, output),
                "queues" => await QueuesAsync(ops, json, output),
                _ => await JobsAsync(ops, dataSource, args, json, output, error),
            };
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
        {
            await error.WriteLineAsync($"{args[0]}: {ex.Message}");
            return Cli.Usage;
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            await error.WriteLineAsync($"{args[0]}: cannot use the database: {(ex is PostgresException pg ? pg.MessageText : ex.Message)}" + (args.Contains("--verbose") ? "\n" + ex : ""));
            return Cli.DatabaseError;
        }
    }

    private static async Task<int> MigrateAsync(PostgresOperations ops, bool dryRun, bool json, TextWriter output)
    {
        if (dryRun)
        {
            var pending = await ops.PendingMigrationsAsync(CancellationToken.None);
            if (json) await output.WriteLineAsync(JsonSerializer.Serialize(new { schema = ops.Schema, pending = pending.Select(p => new { version = p.Version, name = p.Name, sql = p.Sql }) }, Json));
            else if (pending.Count == 0) await output.WriteLineAsync($"Schema '{ops.Schema}' is up to date.");
            else foreach (var p in pending) await output.WriteLineAsync($"-- migration {p.Version}: {p.Name}\n{p.Sql}");
            return Cli.Ok;
        }

        var applied = await ops.MigrateAsync(CancellationToken.None);
        await output.WriteLineAsync(json
            ? JsonSerializer.Serialize(new { schema = ops.Schema, applied }, Json)
            : applied.Count == 0 ? $"Schema '{ops.Schema}' was already up to date." : $"Applied migration(s) {string.Join(", ", applied)} to schema '{ops.Schema}'.");
        return Cli.Ok;
    }

    private static async Task<int> StatusAsync(PostgresOperations ops, bool json, TextWriter output)
    {
        var applied = await ops.AppliedMigrationsAsync(CancellationToken.None);
        var version = applied.Count == 0 ? 0 : applied.Max();
        var latest = PostgresMigrator.LatestVersion;
        if (json) await output.WriteLineAsync(JsonSerializer.Serialize(new { schema = ops.Schema, version, latest, upToDate = version == latest }, Json));
        else await output.WriteLineAsync($"Schema '{ops.Schema}': migration {version} of {latest}{(version == latest ? " (up to date)" : version < latest ? " (run 'scheduling migrate')" : " (newer than this tool)")}.");
        return version == latest ? Cli.Ok : NothingChanged;
    }

    private static async Task<int> QueuesAsync(PostgresOperations ops, bool json, TextWriter output)
    {
        var queues = await ops.QueuesAsync(CancellationToken.None);
        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(queues, Json));
            return Cli.Ok;
        }

        await output.WriteLineAsync($"{"queue",-24} {"waiting",8} {"available",9} {"scheduled",9} {"running",8} {"dead",6} {"oldest due",11} {"done/min",9}");
        foreach (var q in queues)
        {
            var oldest = q.OldestDueSeconds is { } s ? s.ToString("0.0", CultureInfo.InvariantCulture) + " s" : "-";
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{q.Queue,-24} {q.Waiting,8} {q.Available,9} {q.Scheduled,9} {q.Running,8} {q.Dead,6} {oldest,11} {q.FinishedPerMinute,9:0.#}"));
        }

        return Cli.Ok;
    }

    private static async Task<int> JobsAsync(PostgresOperations ops, NpgsqlDataSource dataSource, string[] args, bool json, TextWriter output, TextWriter error)
    {
        var verb = args.Length > 1 ? args[1] : "";
        if (verb == "list")
        {
            var limit = int.Parse(Cli.Option(args, "--limit") ?? "50", CultureInfo.InvariantCulture);
            if (limit is < 1 or > 10_000) throw new ArgumentException($"--limit must be between 1 and 10000 (was {limit}).");
            var rows = await ops.ListJobsAsync(Cli.Option(args, "--queue"), Cli.Option(args, "--kind"), Cli.Option(args, "--state"),
                Time(Cli.Option(args, "--since")), Time(Cli.Option(args, "--until")),
                Cli.Option(args, "--before-id") is { } b ? long.Parse(b, CultureInfo.InvariantCulture) : null, limit, CancellationToken.None);
            if (json) await output.WriteLineAsync(JsonSerializer.Serialize(new { jobs = rows, next = rows.Count == limit ? rows[^1].Id : (long?)null }, Json));
            else
            {
                await output.WriteLineAsync($"{"id",10} {"queue",-16} {"kind",-20} {"state",-10} {"attempt",7} {"run at (UTC)",-20}");
                foreach (var r in rows) await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{r.Id,10} {r.Queue,-16} {r.Kind,-20} {r.State,-10} {r.Attempt,3}/{r.MaxAttempts,-3} {r.RunAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}"));
                if (rows.Count == limit) await output.WriteLineAsync($"more: --before-id {rows[^1].Id}");
            }

            return Cli.Ok;
        }

        if (verb is not ("show" or "cancel" or "retry" or "redrive") || args.Length < 3 || !long.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            await error.WriteLineAsync("usage: scheduling jobs list [filters] | jobs show|cancel|retry|redrive ID");
            return Cli.Usage;
        }

        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = ops.Schema, ApplyMigrations = false });
        switch (verb)
        {
            case "show":
                var job = await queue.GetJobAsync(id);
                if (job is null)
                {
                    await error.WriteLineAsync($"jobs show: no job {id} in schema '{ops.Schema}'.");
                    return Cli.BadInput;
                }

                await output.WriteLineAsync(JsonSerializer.Serialize(job, Json));
                return Cli.Ok;
            case "cancel":
                var outcome = await queue.CancelAsync(id);
                await output.WriteLineAsync(json ? JsonSerializer.Serialize(new { id, outcome = outcome.ToString() }, Json) : $"job {id}: {outcome}");
                return outcome switch { CancelOutcome.NotFound => Cli.BadInput, CancelOutcome.AlreadyFinished => NothingChanged, _ => Cli.Ok };
            case "retry":
                var retried = await ops.RetryNowAsync(id, CancellationToken.None);
                await output.WriteLineAsync(json ? JsonSerializer.Serialize(new { id, retried }, Json) : retried ? $"job {id} is due now" : $"job {id} is not waiting for a retry");
                return retried ? Cli.Ok : NothingChanged;
            default:
                var redriven = await queue.RedriveAsync(id);
                await output.WriteLineAsync(json ? JsonSerializer.Serialize(new { id, redriven }, Json) : redriven ? $"job {id} is available again" : $"job {id} is not dead");
                return redriven ? Cli.Ok : NothingChanged;
        }
    }

    private static DateTimeOffset? Time(string? text) => text is null ? null : DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
