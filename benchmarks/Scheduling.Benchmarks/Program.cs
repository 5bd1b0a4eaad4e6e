using System.Globalization;
using BenchmarkDotNet.Running;
using Scheduling.Benchmarks.Ara;

// Commands of this project:
//   ara-trace  --out FILE [--seed N] [--days N]                      write a synthetic run trace
//   ara-replay --trace FILE --connection CONN [--ceiling-mb N] [--floor-mb N] [--json]
//   ara-shapes [--connection CONN] [--seed N] [--days N] [--ceiling-mb N] [--floor-mb N] [--out FILE]   every trace shape through every strategy, one table
//   ara-sweep  [--seed N] [--days N]                               the default estimator's quantile x margin over every trace shape, against the bar
//   load --scenario NAME|all [--connection CONN] [--jobs N] [--workers N] [--json] [--traced]
//   load --scenario chaos [--processes P] [--kills K] [--seed S] [--work-ms MS] (and the options above)
//   report [--jobs N] [--soak-jobs N] [--workers N] [--out FILE]                    every load scenario on a stock and a tuned server, one run; the table into FILE
//   chaos-worker ...                                                  one worker process of the chaos scenario
//   pgbench-script --schema NAME                                      the queue's per-job SQL for benchmarks/pgbench
//   anything else: BenchmarkDotNet, e.g. --filter '*'
return args.FirstOrDefault() switch
{
    "ara-trace" => AraTraceCommand(args),
    "ara-replay" => await AraReplayCommandAsync(args),
    "ara-shapes" => await AraShapesCommand.RunAsync(args),
    "ara-sweep" => await AraSweepCommand.RunAsync(args),
    "load" => await Scheduling.Benchmarks.Load.LoadCommand.RunAsync(args),
    "report" => await Scheduling.Benchmarks.Load.ReportCommand.RunAsync(args),
    "chaos-worker" => await Scheduling.Benchmarks.Load.ChaosWorker.RunAsync(args),
    "pgbench-script" => PgbenchScriptCommand(args),
    _ => RunBenchmarks(args),
};

static int RunBenchmarks(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(AraReplay).Assembly).Run(args);
    return 0;
}

static string? Option(string[] args, string name) => Scheduling.Benchmarks.Args.Option(args, name);

static int PgbenchScriptCommand(string[] args)
{
    Console.Write(Scheduling.Benchmarks.Load.PgbenchScript.Library(Option(args, "--schema") ?? throw new ArgumentException("pgbench-script needs --schema NAME")));
    return 0;
}

static int AraTraceCommand(string[] args)
{
    var output = Option(args, "--out") ?? throw new ArgumentException("ara-trace needs --out FILE");
    var runs = AraTraceGenerator.Generate(int.Parse(Option(args, "--seed") ?? "1", CultureInfo.InvariantCulture), int.Parse(Option(args, "--days") ?? "10", CultureInfo.InvariantCulture));
    AraTrace.Write(output, runs);
    Console.WriteLine($"{runs.Count} runs written to {output}");
    return 0;
}

static async Task<int> AraReplayCommandAsync(string[] args)
{
    var trace = Option(args, "--trace");
    var connection = Option(args, "--connection") ?? Environment.GetEnvironmentVariable("SCHEDULING_BENCH_POSTGRES");
    if (trace is null || connection is null)
    {
        Console.Error.WriteLine("usage: ara-replay --trace FILE.csv --connection CONNSTRING [--ceiling-mb 40960] [--floor-mb 512] [--json]");
        return 2;
    }

    var results = await AraReplay.RunAsync(AraTrace.Read(trace), connection,
        int.Parse(Option(args, "--floor-mb") ?? "512", CultureInfo.InvariantCulture),
        int.Parse(Option(args, "--ceiling-mb") ?? "40960", CultureInfo.InvariantCulture), CancellationToken.None);
    foreach (var result in results) Console.WriteLine(args.Contains("--json") ? AraReplay.ToJson(result) : AraReplay.ToLine(result));
    return 0;
}
