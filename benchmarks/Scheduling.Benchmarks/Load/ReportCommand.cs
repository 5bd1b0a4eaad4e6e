using System.Globalization;
using System.Text;
using Scheduling.LocalPostgres;

namespace Scheduling.Benchmarks.Load;

/// <summary>
/// <c>report [--jobs N] [--soak-jobs N] [--workers N] [--out FILE]</c>: every load scenario on two throwaway servers
/// started side by side in one run, one stock (PostgreSQL's defaults) and one with the recommended
/// settings, and the table written between the report markers of FILE (docs/benchmarks.md); the soak
/// runs <c>--soak-jobs</c> jobs (default <c>--jobs</c>: 1,000,000 is the real soak). Exit
/// code 1 when a scenario could not verify its jobs; speed never fails it.
/// </summary>
internal static class ReportCommand
{
    private const string Begin = "<!-- load-report:begin (written by the report command; do not edit) -->";
    private const string End = "<!-- load-report:end -->";

    public static async Task<int> RunAsync(string[] args)
    {
        var jobs = int.Parse(Args.Option(args, "--jobs") ?? "20000", CultureInfo.InvariantCulture);
        var soakJobs = int.Parse(Args.Option(args, "--soak-jobs") ?? jobs.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        var workers = int.Parse(Args.Option(args, "--workers") ?? "8", CultureInfo.InvariantCulture);
        var output = Args.Option(args, "--out");
        var runs = new List<(string Server, Dictionary<string, LoadResult> Results)>();
        var ok = true;
        foreach (var stock in new[] { true, false })
        {
            await using var cluster = await TemporaryPostgresCluster.StartAsync(stock);
            var changed = await LoadCommand.ServerConfigurationAsync(cluster.ConnectionString());
            var server = changed.Count == 0 ? "no server-wide setting changed from its default" : string.Join(", ", changed.Select(c => $"{c.Key}={c.Value}"));
            if (stock != (changed.Count == 0)) throw new InvalidOperationException($"The {(stock ? "stock" : "tuned")} server reports: {server}.");
            Console.WriteLine($"server: {(stock ? "stock" : "tuned")}, {server}");
            var harness = new LoadScenarios(cluster.ConnectionString(), jobs, workers);
            var soakHarness = new LoadScenarios(cluster.ConnectionString(), soakJobs, workers);
            var results = new Dictionary<string, LoadResult>(StringComparer.Ordinal);
            foreach (var name in LoadScenarios.All)
            {
                try
                {
                    results[name] = await (name == "soak" ? soakHarness : harness).RunAsync(name, traced: false);
                }
                catch (Exception ex) when (name == "hangfire")
                {
                    Console.Error.WriteLine($"hangfire: could not run the baseline: {ex.GetType().Name}: {ex.Message}");
                    continue;
                }

                ok &= results[name].Verified;
                Console.WriteLine(results[name].ToLine());
            }

            runs.Add((server, results));
        }

        var table = Render(runs, jobs, soakJobs, workers);
        Console.WriteLine(table);
        if (output is not null) MarkedSection.Write(output, Begin, End, "Stock and tuned servers, one run", table);
        return ok ? 0 : 1;
    }

    private static string Render(List<(string Server, Dictionary<string, LoadResult> Results)> runs, int jobs, int soakJobs, int workers)
    {
        var text = new StringBuilder();
        var (stock, tuned) = (runs[0].Results, runs[1].Results);
        string Rate(Dictionary<string, LoadResult> r, string name) => r.TryGetValue(name, out var x) && x.Seconds > 0 && x.Scenario is not ("latency" or "deep" or "chain" or "fanout")
            ? x.JobsPerSecond.ToString("N0", CultureInfo.InvariantCulture) : "";
        string Latency(Dictionary<string, LoadResult> r, string name) => r.TryGetValue(name, out var x) && x.P50Ms is { } p50
            ? string.Create(CultureInfo.InvariantCulture, $"{p50:0.00} / {x.P99Ms:0.00}") : "";
        string Verified(string name) => (stock.TryGetValue(name, out var a) ? a.Verified : (bool?)null, tuned.TryGetValue(name, out var b) ? b.Verified : (bool?)null) switch
        {
            (true, true) => "yes", (null, null) => "not run", _ => "**no**",
        };

        text.AppendLine(Begin);
        text.AppendLine(CultureInfo.InvariantCulture, $"Written by `dotnet run -c Release --project benchmarks/Scheduling.Benchmarks -- report --jobs {jobs}{(soakJobs == jobs ? "" : $" --soak-jobs {soakJobs}")} --workers {workers} --out docs/benchmarks.md`")
            .AppendLine(CultureInfo.InvariantCulture, $"on {DateTime.UtcNow:yyyy-MM-dd} ({Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}).")
            .AppendLine(CultureInfo.InvariantCulture, $"Two throwaway PostgreSQL servers in one run, fsync on: **stock** = {runs[0].Server}; **tuned** = {runs[1].Server}.")
            .AppendLine("Only ratios within one run mean anything: absolute figures move 2-3x between machines.")
            .AppendLine()
            .AppendLine("| scenario | stock jobs/s | stock p50 / p99 ms | tuned jobs/s | tuned p50 / p99 ms | verified |")
            .AppendLine("|---|---|---|---|---|---|");
        foreach (var name in LoadScenarios.All)
            text.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {Rate(stock, name)} | {Latency(stock, name)} | {Rate(tuned, name)} | {Latency(tuned, name)} | {Verified(name)} |");

        text.AppendLine()
            .AppendLine("| ratio (same server) | target | stock | tuned |")
            .AppendLine("|---|---|---|---|");
        foreach (var (a, b, target) in new[] { ("drain", "raw-claim-batch", ">= 0.8"), ("drain-single", "raw-claim-single", ">= 0.9"), ("enqueue-single", "raw-insert-single", ">= 0.9"), ("enqueue-bulk", "raw-copy-bulk", ">= 0.8"), ("drain", "raw-batch", "reference (retired floor)"), ("drain", "hangfire", "") })
            text.AppendLine(CultureInfo.InvariantCulture, $"| {a} / {b} | {target} | {LoadResult.Ratio(stock, a, b)} | {LoadResult.Ratio(tuned, a, b)} |");

        string Soak(Dictionary<string, LoadResult> r, string key) => r.TryGetValue("soak", out var s) && s.Extra.TryGetValue(key, out var v) ? Convert.ToString(v, CultureInfo.InvariantCulture) ?? "" : "";
        text.AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"Soak ({soakJobs:N0} jobs): stock / tuned rate {StockOverTuned("soak")}; memory growth (fractions) {Soak(stock, "memory_growth")} / {Soak(tuned, "memory_growth")}; throughput drift (fractions: the last three tenths against tenths 2-4, the first tenth being the warm-up) {Soak(stock, "throughput_drift")} / {Soak(tuned, "throughput_drift")} (target: rate within 15 %, growth < 10 %, drift within ±10 %); rate per tenth, stock {Soak(stock, "tenths_jobs_per_s")}, tuned {Soak(tuned, "tenths_jobs_per_s")}.")
            .AppendLine(End);
        return text.ToString();

        string StockOverTuned(string name) => stock.TryGetValue(name, out var s) && tuned.TryGetValue(name, out var t) && t.JobsPerSecond > 0
            ? (s.JobsPerSecond / t.JobsPerSecond).ToString("0.00", CultureInfo.InvariantCulture) : "n/a";
    }
}
