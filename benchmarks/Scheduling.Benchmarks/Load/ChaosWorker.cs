using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Scheduling.Postgres;

namespace Scheduling.Benchmarks.Load;

/// <summary>
/// <c>chaos-worker --connection C --schema S --worker-id ID --concurrency N --effects FILE --work-ms MS</c>:
/// one worker process of the chaos scenario (<see cref="ChaosScenario"/>). Its handler appends
/// "job attempt" to the side-effect log before anything else (one write per line, so a SIGKILL loses
/// at most a line whose handler had not yet done anything), works for about MS milliseconds, and fails
/// the first attempt of every tenth job. Stops gracefully on SIGTERM, as any generic host.
/// </summary>
internal static class ChaosWorker
{
    public const string Queue = "chaos", Kind = "chaos";

    /// <summary>Every tenth job fails its first attempt, so the run mixes failure and success acknowledgements.</summary>
    public static bool FailsFirstAttempt(int payload) => payload % 10 == 0;

    public static async Task<int> RunAsync(string[] args)
    {
        string Required(string name) => Args.Option(args, name) ?? throw new ArgumentException($"chaos-worker needs {name}");
        var connection = Required("--connection");
        var schema = Required("--schema");
        var workerId = Required("--worker-id");
        var concurrency = int.Parse(Required("--concurrency"), CultureInfo.InvariantCulture);
        var workMs = int.Parse(Required("--work-ms"), CultureInfo.InvariantCulture);
        await using var effects = new FileStream(Required("--effects"), FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
        var gate = new Lock();

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("SCHEDULING_BENCH_LOG") is { } level)
            builder.Logging.AddSimpleConsole().SetMinimumLevel(Enum.Parse<LogLevel>(level));
        builder.Services.AddScheduling(s => s
            .UsePostgres(connection, o => o.Schema = schema)
            .Configure(o =>
            {
                o.WorkerId = workerId;
                o.AddQueue(Queue, concurrency);
                // Short leases so a killed worker's jobs come back within seconds.
                o.LeaseDuration = TimeSpan.FromSeconds(4);
                o.HeartbeatInterval = TimeSpan.FromSeconds(1);
                o.RescueInterval = TimeSpan.FromMilliseconds(500);
                o.Queue.Retry.BaseDelay = TimeSpan.FromMilliseconds(100);
                o.Queue.Retry.MaxDelay = TimeSpan.FromSeconds(1);
            })
            .AddHandler<int>(Kind, async (ctx, ct) =>
            {
                var line = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{ctx.Job.Id} {ctx.Job.Attempt}\n"));
                lock (gate) effects.Write(line); // unbuffered: in the kernel before the work starts
                await Task.Delay(TimeSpan.FromMilliseconds(workMs * (0.5 + Random.Shared.NextDouble())), ct);
                if (FailsFirstAttempt(ctx.Payload) && ctx.Job.Attempt == 1) throw new InvalidOperationException("chaos: the first attempt of every tenth job fails");
            }));
        using var host = builder.Build();
        await host.StartAsync();
        Console.WriteLine("ready");
        await host.WaitForShutdownAsync();
        return 0;
    }
}
