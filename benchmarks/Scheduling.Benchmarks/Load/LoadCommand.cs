using System.Globalization;
using Scheduling.LocalPostgres;

namespace Scheduling.Benchmarks.Load;

/// <summary>
/// <c>load --scenario NAME|all|flow [--connection CONN] [--jobs N] [--workers N] [--json] [--traced]</c>.
/// Without --connection a throwaway local PostgreSQL is started (fsync on). Exit code 1 when any
/// scenario could not verify its jobs; speed never fails the command. <c>chaos</c> (worker processes
/// killed, the server restarted and crashed: <see cref="ChaosScenario"/>) is not part of <c>all</c>.
/// </summary>
internal static class LoadCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        string? Option(string name) => Args.Option(args, name);
        var scenario = Option("--scenario") ?? "all";
        var jobs = int.Parse(Option("--jobs") ?? "20000", CultureInfo.InvariantCulture);
        var workers = int.Parse(Option("--workers") ?? "8", CultureInfo.InvariantCulture);
        var json = args.Contains("--json");
        var connection = Option("--connection") ?? Environment.GetEnvironmentVariable("SCHEDULING_BENCH_POSTGRES");
        await using var cluster = connection is null ? await TemporaryPostgresCluster.StartAsync() : null;
        connection ??= cluster!.ConnectionString();

        if (scenario == "chaos")
        {
            var chaos = await new ChaosScenario(connection, cluster, jobs, workers, args).RunAsync();
            Console.WriteLine(json ? chaos.ToJson() : chaos.ToLine());
            return chaos.Verified ? 0 : 1;
        }

        var server = await ServerConfigurationAsync(connection);
        Console.WriteLine(json ? System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object> { ["scenario"] = "server", ["stock"] = server.Count == 0, ["changed"] = server })
            : server.Count == 0 ? "server: stock configuration (no server-wide setting changed from its default)"
            : $"server: tuned ({string.Join(", ", server.Select(s => $"{s.Key}={s.Value}"))})");

        var scenarios = scenario switch { "all" => LoadScenarios.All, "flow" => LoadScenarios.Flow, _ => [scenario] };
        var harness = new LoadScenarios(connection, jobs, workers);
        var results = new Dictionary<string, LoadResult>();
        var ok = true;
        foreach (var name in scenarios)
        {
            LoadResult result;
            try
            {
                result = await harness.RunAsync(name, args.Contains("--traced"));
            }
            catch (Exception ex) when (name == "hangfire")
            {
                Console.Error.WriteLine($"hangfire: could not run the baseline: {ex.GetType().Name}: {ex.Message}");
                continue;
            }

            results[name] = result;
            ok &= result.Verified;
            Console.WriteLine(json ? result.ToJson() : result.ToLine());
        }

        if (scenario == "all")
        {
            string Ratio(string a, string b) => LoadResult.Ratio(results, a, b);
            var ratios = $"ratios: drain/raw-claim-batch {Ratio("drain", "raw-claim-batch")}  drain-single/raw-claim-single {Ratio("drain-single", "raw-claim-single")}"
                + $"  enqueue-single/raw-insert-single {Ratio("enqueue-single", "raw-insert-single")}  enqueue-bulk/raw-copy-bulk {Ratio("enqueue-bulk", "raw-copy-bulk")}"
                + $"  drain/raw-batch {Ratio("drain", "raw-batch")}  drain-single/raw-single {Ratio("drain-single", "raw-single")}  drain/hangfire {Ratio("drain", "hangfire")}"
                + $"  (one-shot floor: drain/raw-oneshot-batch {Ratio("drain", "raw-oneshot-batch")}  drain-single/raw-oneshot-single {Ratio("drain-single", "raw-oneshot-single")})";
            Console.WriteLine(json ? System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string>
            {
                ["scenario"] = "ratios", ["drain_over_raw_claim_batch"] = Ratio("drain", "raw-claim-batch"),
                ["drain_single_over_raw_claim_single"] = Ratio("drain-single", "raw-claim-single"),
                ["enqueue_single_over_raw_insert_single"] = Ratio("enqueue-single", "raw-insert-single"), ["enqueue_bulk_over_raw_copy_bulk"] = Ratio("enqueue-bulk", "raw-copy-bulk"),
                ["drain_over_raw_batch"] = Ratio("drain", "raw-batch"),
                ["drain_single_over_raw_single"] = Ratio("drain-single", "raw-single"), ["drain_over_hangfire"] = Ratio("drain", "hangfire"),
                ["drain_over_raw_oneshot_batch"] = Ratio("drain", "raw-oneshot-batch"), ["drain_single_over_raw_oneshot_single"] = Ratio("drain-single", "raw-oneshot-single"),
            }) : ratios);
        }

        if (scenario == "flow")
        {
            string Ratio(string a) => LoadResult.Ratio(results, a, "drain");
            Console.WriteLine($"ratios: keyed-drain/drain {Ratio("keyed-drain")}  fair-drain/drain {Ratio("fair-drain")}");
        }

        return ok ? 0 : 1;
    }

    /// <summary>
    /// The server-wide settings that differ from PostgreSQL's defaults, from the configuration file or
    /// ALTER SYSTEM (what a user's stock server would not have); the ones every cluster sets at initdb
    /// (memory and locale sizing, log and socket paths) are not counted. Empty: a stock configuration.
    /// </summary>
    internal static async Task<Dictionary<string, string>> ServerConfigurationAsync(string connection)
    {
        await using var dataSource = Npgsql.NpgsqlDataSource.Create(connection);
        await using var command = dataSource.CreateCommand("""
            SELECT name, setting FROM pg_settings
            WHERE source IN ('configuration file', 'command line') AND setting IS DISTINCT FROM boot_val
              AND name NOT IN ('max_connections', 'shared_buffers', 'dynamic_shared_memory_type', 'max_wal_size', 'min_wal_size',
                               'log_timezone', 'TimeZone', 'lc_messages', 'lc_monetary', 'lc_numeric', 'lc_time', 'default_text_search_config',
                               'port', 'unix_socket_directories', 'listen_addresses', 'data_directory', 'config_file', 'hba_file', 'ident_file',
                               'logging_collector', 'log_directory', 'log_filename', 'log_line_prefix', 'cluster_name', 'ssl', 'ssl_cert_file', 'ssl_key_file',
                               'password_encryption', 'external_pid_file', 'stats_temp_directory', 'datestyle', 'DateStyle')
            ORDER BY name
            """);
        var changed = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) changed[reader.GetString(0)] = reader.GetString(1);
        return changed;
    }
}
