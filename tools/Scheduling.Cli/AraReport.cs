using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Scheduling.Postgres;

namespace Scheduling.Cli;

/// <summary><c>scheduling ara report</c>.</summary>
internal static class AraReport
{
    public static Command Create()
    {
        var from = Cli.TimeOption("--from", "the first day (default: 7 days before --to)");
        var to = Cli.TimeOption("--to", "the end (default: now)");
        var ceiling = Cli.BoundedInt("--ceiling-mb", "the memory ceiling allocations are compared with", 40_960, 1, int.MaxValue);
        return DatabaseCommand.Create("report", "ARA's impact per day and definition: null hashes, elevated allocations, ceiling hits, GPU jobs and the hash audit (exit 3 when the audit finds a mismatch).", async (db, parse, cancellationToken) =>
        {
            var end = parse.GetValue(to) ?? DateTimeOffset.UtcNow;
            var report = await db.Queue.GetAraReportAsync(parse.GetValue(from) ?? end.AddDays(-7), end, parse.GetValue(ceiling), cancellationToken);
            if (db.Json) await db.Output.WriteLineAsync(JsonSerializer.Serialize(report, Cli.Json));
            else await WriteTableAsync(report, db.Output);
            return report.HashMismatches == 0 ? Cli.Ok : Cli.BadInput;
        }, from, to, ceiling);
    }

    private static async Task WriteTableAsync(AraImpactReport report, TextWriter output)
    {
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"ARA impact {report.From:yyyy-MM-dd HH:mm} .. {report.To:yyyy-MM-dd HH:mm} UTC"));
        await output.WriteLineAsync($"{"day",-10}  {"definition",-24}  {"jobs",7}  {"null hash",9}  {">1.5x base",10}  {"at ceiling",10}  {"gpu",5}");
        foreach (var d in report.Days)
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{d.Day:yyyy-MM-dd}  {d.DefinitionId,-24}  {d.Jobs,7}  {d.NullCommandHash,9}  {d.OverOneAndHalfBaseline,10}  {d.AtCeiling,10}  {d.Gpu,5}"));
        await output.WriteLineAsync("top allocations: " + string.Join(", ", report.TopAllocations.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.MemoryMb} MB x {b.Jobs}"))));
        await output.WriteLineAsync($"hash audit: {report.HashMismatches} job(s) whose stored hash is not md5(command){(report.HashMismatches == 0 ? "" : "  <-- investigate")}");
    }
}
