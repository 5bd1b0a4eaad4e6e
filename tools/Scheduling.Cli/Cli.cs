using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Scheduling.Cli;

/// <summary>
/// The operator CLI. Exit codes: 0 success (and help, version), 2 usage error (unknown command or
/// option, bad value), 3 bad input or not found, 4 database unreachable or refused, 5 nothing changed.
/// </summary>
/// <remarks>
/// Parsing is System.CommandLine's: an unknown option is an error rather than ignored (a typo in
/// <c>--connection</c> must not fall back to <c>SCHEDULING_CONNECTION</c>), values are typed and
/// checked before anything touches a database, and help and version come from the same command tree.
/// </remarks>
internal static class Cli
{
    public const int Ok = 0, Usage = 2, BadInput = 3, DatabaseError = 4, NothingChanged = 5;

    /// <summary>Every command's JSON: camelCase names, enums as their names, indented.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = new RootCommand("The scheduling operator CLI: migrations, queues and jobs, stagger plans and the ARA report.")
        {
            OperatorCommands.Migrate(),
            OperatorCommands.Status(),
            OperatorCommands.Queues(),
            OperatorCommands.Hosts(),
            DashboardCommand.Create(),
            OperatorCommands.Jobs(),
            OperatorCommands.Batches(),
            RecurringCommands.Recurring(),
            StaggerCommands.Create(),
            new Command("ara", "Adaptive resource allocation.") { AraReport.Create() },
        };

        if (args.Length == 0)
        {
            await root.Parse("--help").InvokeAsync(new InvocationConfiguration { Output = error }, cancellationToken);
            return Usage;
        }

        var parsed = root.Parse(args);
        if (parsed.Errors.Count == 0) return await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false }, cancellationToken);

        foreach (var line in ParseErrors(parsed)) await error.WriteLineAsync(line);
        await error.WriteLineAsync($"(see '{CommandPath(parsed.CommandResult)} --help')");
        return Usage;
    }

    /// <summary>One line per problem: unknown tokens with the nearest option or command, then the parser's other errors.</summary>
    private static IEnumerable<string> ParseErrors(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        var path = CommandPath(parsed.CommandResult);
        var unmatched = parsed.UnmatchedTokens;
        var candidates = command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Concat(command.Subcommands.Select(c => c.Name)).ToArray();
        foreach (var token in unmatched.Where(t => t.StartsWith('-')).DefaultIfEmpty(unmatched.Count > 0 ? unmatched[0] : null).OfType<string>())
        {
            var nearest = Nearest(token, candidates);
            var what = token.StartsWith('-') ? "unknown option" : command.Subcommands.Count > 0 ? "unknown command" : "unexpected argument";
            yield return $"{path}: {what} '{token}'" + (nearest is null ? "" : $" (did you mean '{nearest}'?)");
        }

        // The parser's own line for each unmatched token is replaced by the one above; "no command given" only when none was.
        foreach (var problem in parsed.Errors.Where(e => !unmatched.Any(t => e.Message.Contains($"'{t}'", StringComparison.Ordinal))))
        {
            if (problem.SymbolResult is CommandResult && command.Subcommands.Count > 0)
            {
                if (unmatched.Count == 0) yield return $"{path}: which command? {string.Join(", ", command.Subcommands.Select(c => c.Name))}";
            }
            else yield return $"{path}: {problem.Message}";
        }
    }

    /// <summary>An enum value as the CLI spells it everywhere (as in its JSON): its name, camelCase.</summary>
    internal static string Name<T>(T value) where T : struct, Enum => JsonNamingPolicy.CamelCase.ConvertName(value.ToString());

    /// <summary>"scheduling jobs list" for the command that <paramref name="result"/> matched.</summary>
    internal static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is CommandResult c; r = c.Parent) names.Insert(0, c.Parent is null ? "scheduling" : c.Command.Name);
        return string.Join(' ', names);
    }

    /// <summary>The candidate closest to <paramref name="token"/> by edit distance, when it is close enough to be a typo.</summary>
    internal static string? Nearest(string token, IEnumerable<string> candidates)
    {
        var best = candidates.Select(c => (Name: c, Distance: EditDistance(token, c))).OrderBy(c => c.Distance).FirstOrDefault();
        return best.Name is not null && best.Distance <= Math.Max(2, token.Length / 3) ? best.Name : null;
    }

    private static int EditDistance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var diagonal = row[0];
            row[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1));
                diagonal = above;
            }
        }

        return row[b.Length];
    }

    /// <summary>An enum option spelt by its members' lower-case names, case-insensitive, numbers refused, with the nearest name on a typo.</summary>
    internal static Option<T?> EnumOption<T>(string name, string description) where T : struct, Enum
    {
        var names = Enum.GetNames<T>().Select(n => n.ToLowerInvariant()).ToArray();
        return new Option<T?>(name)
        {
            Description = description,
            HelpName = string.Join('|', names),
            CustomParser = result =>
            {
                var text = result.Tokens.Single().Value;
                if (!text.Any(char.IsDigit) && Enum.TryParse<T>(text, ignoreCase: true, out var value) && Enum.IsDefined(value)) return value;
                var nearest = Nearest(text, names);
                result.AddError($"{name}: '{text}' is not one of {string.Join(", ", names)}" + (nearest is null ? "" : $" (did you mean '{nearest}'?)"));
                return null;
            },
        };
    }

    /// <summary>A time option: ISO 8601 or any invariant date, UTC unless it says otherwise.</summary>
    internal static Option<DateTimeOffset?> TimeOption(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "time",
        CustomParser = result =>
        {
            var text = result.Tokens.Single().Value;
            if (DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var time)) return time;
            result.AddError($"{name}: '{text}' is not a date or time (e.g. 2026-12-01 or 2026-12-01T08:00:00Z)");
            return null;
        },
    };

    /// <summary>A rate option: COUNT/PERIOD, the period a number and a unit (ms, s, m, h, d) or a unit alone: 10/s, 100/1m, 5/500ms.</summary>
    internal static Option<RateLimit?> RateOption(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "count/period",
        CustomParser = result =>
        {
            var text = result.Tokens.Single().Value;
            if (RateLimit.TryParse(text, out var rate, out var problem)) return rate;
            result.AddError($"{name}: '{text}' {problem}");
            return null;
        },
    };

    /// <summary>A queue's limits in one line, or "-".</summary>
    internal static string Limits(QueueLimits limits) => limits.IsLimited
        ? string.Join(", ", new[]
        {
            limits.Rate is { } rate ? "rate " + rate : null,
            limits.RatePerKey is { } keyRate ? "per key " + keyRate : null,
            limits.ConcurrencyPerKey is { } cap ? $"{cap} running per key" : null,
            limits.FairKeys ? "fair keys" : null,
        }.OfType<string>())
        : "-";

    /// <summary>An integer option within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    internal static Option<int> BoundedInt(string name, string description, int defaultValue, int min, int max)
    {
        var option = new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue, HelpName = "n" };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is var value && (value < min || value > max)) result.AddError($"{name} must be between {min} and {max} (was {value}).");
        });
        return option;
    }
}
