using System.Globalization;
using System.Text.Json;
using Npgsql;
using Scheduling.Postgres;

namespace Scheduling.Cli;

/// <summary><c>scheduling ara report</c>.</summary>
internal static class AraReport
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        var connection = Cli.Connection(args);
        if (string.IsNullOrWhiteSpace(connection))
        {
            await error.WriteLineAsync("ara report needs --connection CONNSTRING (or SCHEDULING_CONNECTION).");
            return Cli.Usage;
        }

        try
        {
            var to = Cli.Option(args, "--to") is { } t ? DateTimeOffset.Parse(t, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal) : DateTimeOffset.UtcNow;
            var from = Cli.Option(args, "--from") is { } f ? DateTimeOffset.Parse(f, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal) : to.AddDays(-7);
            var ceiling = int.Parse(Cli.Option(args, "--ceiling-mb") ?? "40960", CultureInfo.InvariantCulture);
            var schema = Cli.Option(args, "--schema") ?? "scheduling";
            await using var dataSource = NpgsqlDataSource.Create(connection);
            var report = await AraImpactReport.QueryAsync(dataSource, schema, from, to, ceiling);
            if (args.Contains("--json")) await output.WriteLineAsync(JsonSerializer.Serialize(report, Json));
            else await WriteTableAsync(report, output);
            return report.HashMismatches == 0 ? Cli.Ok : Cli.BadInput;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            await error.WriteLineAsync($"ara report: {ex.Message}");
            return Cli.Usage;
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            await error.WriteLineAsync($"ara report: cannot read the database: {(ex is PostgresException pg ? pg.MessageText : ex.Message)}" + (args.Contains("--verbose") ? "\n" + ex : ""));
            return Cli.DatabaseError;
        }
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
