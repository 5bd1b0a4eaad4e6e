using System.Globalization;
using System.Text.RegularExpressions;
using Scheduling.Postgres;
using Scheduling.Postgres.Statements;

namespace Scheduling.Benchmarks.Load;

/// <summary>
/// The library's per-job statements (AcquireJobs, the fenced SetStatesIfRunning and the settle probe, the very text the
/// queue runs) as a pgbench script, so benchmarks/pgbench/run.sh measures them with no .NET code.
/// One transaction leases :batch jobs and completes them, as drain-single's acknowledge-and-acquire does.
/// </summary>
internal static partial class PgbenchScript
{
    public static string Library(string schema)
    {
        var schemaName = new PostgresSchema(schema, "--schema");
        var acquireJobs = new AcquireJobs(schemaName);
        var dependencies = new Dependencies(schemaName);
        static string Fill(string value) => $"array_fill({value}, ARRAY[:n::int])";

        // pgbench's \gset takes one row: aggregate what the acquire returns instead of listing it.
        if (!acquireJobs.Single.TrimEnd().EndsWith(AcquireJobs.OrderedTail, StringComparison.Ordinal))
            throw new InvalidOperationException("AcquireJobs.Single no longer ends with its ordered tail; update PgbenchScript.");
        var acquire = acquireJobs.Single.TrimEnd()[..^AcquireJobs.OrderedTail.Length]
            + "SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens, count(*) AS n FROM leased";

        return string.Join("\n", [
            "BEGIN;",
            OneLine(Bind(acquire, "'default'", ":batch", "'pgbench'", "NULL::timestamptz", "interval '5 minutes'")) + " \\gset",
            OneLine(Bind(new SetStatesIfRunning(schemaName).Sql, ":ids::bigint[]", ":tokens::uuid[]", Fill("NULL::boolean"), Fill("'succeeded'::text"), Fill("NULL::interval"),
                Fill("true"), Fill("0"), Fill("NULL::integer"), Fill("NULL::text"), Fill("false"), "NULL::timestamptz", "20", "'pgbench'")) + ";",
            OneLine(Bind(dependencies.SettleFinished, ":ids::bigint[]", "NULL::timestamptz", "'pgbench'")) + ";",
            "COMMIT;",
            "",
        ]);
    }

    /// <summary>Replaces $1, $2, ... with pgbench variables or literals.</summary>
    private static string Bind(string statement, params string[] values) =>
        Parameter().Replace(statement, m => values[int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) - 1]);

    /// <summary>pgbench reads one statement per line unless it ends in a semicolon; comments would swallow the rest.</summary>
    private static string OneLine(string statement) =>
        string.Join(" ", statement.Split('\n').Select(l => l.Split("--")[0].Trim()).Where(l => l.Length > 0));

    [GeneratedRegex(@"\$(\d+)\b")]
    private static partial Regex Parameter();
}
