using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Scheduling.LocalPostgres;
using Scheduling.Postgres;

namespace Scheduling.Benchmarks.Load;

/// <summary>
/// <c>load --scenario chaos [--processes P] [--kills K] [--seed S] [--work-ms MS]</c>: P worker
/// processes (<see cref="ChaosWorker"/>, <c>--workers</c> slots each) drain the jobs while the harness
/// SIGKILLs a random one K times (starting a replacement each time) and, when it runs its own server,
/// restarts PostgreSQL once and stops it immediately (a crash: no checkpoint) once. Then, in the
/// database and the handlers' side-effect log, the invariants: every job terminal; every succeeded job
/// ran, and its final attempt is one that ran; no job charged an attempt it never ran (beyond the
/// bound that stops a job crashing its host before its first heartbeat from running forever); none
/// dead without a run. Reported, not judged: the fraction of jobs run more than they had to (allowed
/// by at-least-once) and the longest time from a kill until the killed worker held no job.
/// </summary>
internal sealed class ChaosScenario(string connectionString, TemporaryPostgresCluster? cluster, int jobs, int concurrency, string[] args)
{
    private readonly int _processes = int.Parse(Args.Option(args, "--processes") ?? "3", CultureInfo.InvariantCulture);
    private readonly int _kills = int.Parse(Args.Option(args, "--kills") ?? "6", CultureInfo.InvariantCulture);
    private readonly int _seed = int.Parse(Args.Option(args, "--seed") ?? "1", CultureInfo.InvariantCulture);
    private readonly int _workMs = int.Parse(Args.Option(args, "--work-ms") ?? "60", CultureInfo.InvariantCulture);
    private readonly List<WorkerProcess> _workers = [];
    private string _schema = "";
    private string _effectsDir = "";
    private int _generation;

    private sealed record WorkerProcess(Process Process, string Id, string EffectsFile);

    public async Task<LoadResult> RunAsync()
    {
        _schema = $"load_chaos_{Guid.NewGuid().ToString("N")[..6]}";
        _effectsDir = Directory.CreateTempSubdirectory("scheduling-chaos-").FullName;
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.ConnectionStringBuilder.Timeout = 5;
        await using var dataSource = builder.Build();
        var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = _schema });
        await queue.MigrateAsync();
        for (var done = 0; done < jobs; done += 5_000)
            await queue.EnqueueManyAsync(Enumerable.Range(done, Math.Min(5_000, jobs - done)).Select(i => new JobRequest(ChaosWorker.Kind, i) { Queue = ChaosWorker.Queue, MaxAttempts = 10 }).ToArray());

        var random = new Random(_seed);
        var faults = Enumerable.Repeat("kill", _kills).ToList();
        if (cluster is not null) faults.AddRange(["restart", "crash"]);
        faults = faults.OrderBy(_ => random.Next()).ToList();
        var clock = Stopwatch.StartNew();
        var rescues = new List<Task<TimeSpan>>();
        var faultLog = new List<string>();
        try
        {
            for (var i = 0; i < _processes; i++) StartWorker();
            foreach (var fault in faults)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(random.Next(600, 1800)));
                switch (fault)
                {
                    case "kill":
                        var victim = _workers[random.Next(_workers.Count)];
                        victim.Process.Kill(entireProcessTree: true); // SIGKILL
                        _workers.Remove(victim);
                        rescues.Add(TimeUntilReleasedAsync(dataSource, victim.Id, Stopwatch.StartNew()));
                        StartWorker();
                        break;
                    case "restart":
                        cluster!.Restart();
                        break;
                    case "crash":
                        cluster!.StopImmediately();
                        await Task.Delay(TimeSpan.FromSeconds(2));
                        cluster.StartServer();
                        break;
                }

                faultLog.Add($"{clock.Elapsed.TotalSeconds:0.0}s {fault}");
            }

            var settled = await WaitAsync(async () => await CountAsync(dataSource, "state NOT IN ('succeeded', 'dead', 'cancelled')") == 0, TimeSpan.FromMinutes(5));
            clock.Stop();
            var rescueTimes = await Task.WhenAll(rescues);
            await StopWorkersAsync();
            return await VerifyAsync(dataSource, settled, clock.Elapsed, rescueTimes, faultLog);
        }
        finally
        {
            foreach (var worker in _workers) worker.Process.Kill(entireProcessTree: true);
            await using (var drop = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{_schema}\" CASCADE")) await drop.ExecuteNonQueryAsync();
            Directory.Delete(_effectsDir, recursive: true);
        }
    }

    private void StartWorker()
    {
        var id = $"chaos-{_generation++}";
        var effects = Path.Combine(_effectsDir, id + ".log");
        // This very program, as a worker: through dotnet when it was started as a dll.
        var self = Environment.ProcessPath!;
        var info = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(ChaosScenario).Assembly.Location);
        foreach (var arg in new[] { "chaos-worker", "--connection", connectionString, "--schema", _schema, "--worker-id", id,
                     "--concurrency", concurrency.ToString(CultureInfo.InvariantCulture), "--effects", effects, "--work-ms", _workMs.ToString(CultureInfo.InvariantCulture) })
            info.ArgumentList.Add(arg);
        _workers.Add(new WorkerProcess(Process.Start(info)!, id, effects));
    }

    /// <summary>How long after a kill the killed worker still held running jobs (until rescued; polled every 100 ms).</summary>
    private async Task<TimeSpan> TimeUntilReleasedAsync(NpgsqlDataSource dataSource, string workerId, Stopwatch sinceKill)
    {
        await WaitAsync(async () => await CountAsync(dataSource, "state = 'running' AND locked_by = $1", workerId) == 0, TimeSpan.FromMinutes(5));
        return sinceKill.Elapsed;
    }

    private async Task StopWorkersAsync()
    {
        foreach (var worker in _workers)
            using (var term = Process.Start("kill", ["-TERM", worker.Process.Id.ToString(CultureInfo.InvariantCulture)])) await term.WaitForExitAsync();
        foreach (var worker in _workers)
        {
            try { await worker.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)); }
            catch (TimeoutException) { worker.Process.Kill(entireProcessTree: true); }
        }

        _workers.Clear();
    }

    private async Task<LoadResult> VerifyAsync(NpgsqlDataSource dataSource, bool settled, TimeSpan elapsed, TimeSpan[] rescueTimes, List<string> faultLog)
    {
        // Every run each handler began, by job: the attempt numbers it ran under.
        var runs = new Dictionary<long, List<int>>();
        foreach (var file in Directory.GetFiles(_effectsDir, "*.log"))
        {
            foreach (var line in await File.ReadAllLinesAsync(file))
            {
                var parts = line.Split(' ');
                if (parts.Length != 2) continue; // cannot happen with one write per line; never trusted blindly
                var id = long.Parse(parts[0], CultureInfo.InvariantCulture);
                if (!runs.TryGetValue(id, out var attempts)) runs[id] = attempts = [];
                attempts.Add(int.Parse(parts[1], CultureInfo.InvariantCulture));
            }
        }

        int total = 0, succeeded = 0, dead = 0, active = 0, succeededUnrun = 0, finishedByAnUnrunAttempt = 0, chargedUnrun = 0, chargedByPoisonBound = 0, deadUnrun = 0, duplicates = 0;
        await using (var read = dataSource.CreateCommand($"SELECT id, state, attempt, unstarted_rescues, (payload #>> '{{}}')::int FROM \"{_schema}\".jobs"))
        await using (var reader = await read.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                total++;
                var (id, state, attempt, unstartedRescues, payload) = (reader.GetInt64(0), reader.GetString(1), reader.GetInt32(2), reader.GetInt16(3), reader.GetInt32(4));
                var ran = runs.GetValueOrDefault(id) ?? [];
                switch (state)
                {
                    case "succeeded":
                        succeeded++;
                        if (ran.Count == 0) succeededUnrun++;
                        else if (!ran.Contains(attempt)) finishedByAnUnrunAttempt++;
                        duplicates += Math.Max(0, ran.Count - (ChaosWorker.FailsFirstAttempt(payload) ? 2 : 1));
                        break;
                    case "dead":
                        dead++;
                        if (ran.Count == 0) deadUnrun++;
                        break;
                    default:
                        active++;
                        break;
                }

                // Each charged attempt is a run, unless the job reached the bound on free rescues.
                if (attempt > ran.Count)
                {
                    if (unstartedRescues >= JobTransitions.MaxUnstartedRescues) chargedByPoisonBound++;
                    else chargedUnrun++;
                }
            }
        }

        var invariantsHold = settled && total == jobs && active == 0 && succeededUnrun == 0 && finishedByAnUnrunAttempt == 0 && chargedUnrun == 0 && deadUnrun == 0;
        var result = new LoadResult("chaos", jobs, concurrency, elapsed.TotalSeconds, null, null, invariantsHold)
        {
            Extra =
            {
                ["processes"] = _processes, ["kills"] = _kills, ["pg_faults"] = cluster is null ? "none (--connection given)" : "restart, crash",
                ["succeeded"] = succeeded, ["dead"] = dead, ["not_terminal"] = active,
                ["executions"] = runs.Values.Sum(r => r.Count),
                ["duplicate_fraction"] = Math.Round(jobs == 0 ? 0 : (double)duplicates / jobs, 4),
                ["max_kill_to_rescue_s"] = Math.Round(rescueTimes.Length == 0 ? 0 : rescueTimes.Max().TotalSeconds, 2),
                ["succeeded_unrun"] = succeededUnrun, ["finished_by_unrun_attempt"] = finishedByAnUnrunAttempt,
                ["charged_unrun"] = chargedUnrun, ["charged_by_poison_bound"] = chargedByPoisonBound, ["dead_unrun"] = deadUnrun,
                ["seed"] = _seed, ["faults"] = string.Join(", ", faultLog),
            },
        };
        return result;
    }

    private Task<long> CountAsync(NpgsqlDataSource dataSource, string condition, string? parameter = null) =>
        LoadScenarios.CountAsync(dataSource, $"SELECT count(*) FROM \"{_schema}\".jobs WHERE {condition}", parameter);

    /// <summary>Polls <paramref name="condition"/> every 100 ms, riding out a server that is down; false at the timeout.</summary>
    private static async Task<bool> WaitAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            try
            {
                if (await condition()) return true;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
            {
                // The server is restarting: ask again.
            }

            await Task.Delay(100);
        }

        return false;
    }
}
