// The sample: a few thousand jobs of two kinds, some failing and retrying, processed by the
// worker host with live progress and a summary. Where the jobs live:
//   --connection "Host=...;Username=...;Password=..."   an existing PostgreSQL server (schema 'scheduling')
//   --in-memory                                         the in-memory queue
//   neither                                             a throwaway local PostgreSQL when its server binaries
//                                                       are installed, otherwise the in-memory queue (and it says so)
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Scheduling;
using Scheduling.LocalPostgres;

const int Images = 2000;
const int Emails = 1000;
const int ReportSteps = 4;

TemporaryPostgresCluster? cluster = null;
var connection = args.SkipWhile(a => a != "--connection").Skip(1).FirstOrDefault();
if (args.Contains("--connection") && string.IsNullOrWhiteSpace(connection))
{
    Console.Error.WriteLine("--connection needs a connection string, e.g. --connection \"Host=localhost;Username=app;Password=secret;Database=app\".");
    return 2;
}

if (connection is not null)
{
    Console.WriteLine($"Using the PostgreSQL server given by --connection (host {new Npgsql.NpgsqlConnectionStringBuilder(connection).Host}); the queue lives in schema 'scheduling'.");
}
else if (args.Contains("--in-memory"))
{
    Console.WriteLine("Running on the in-memory queue (--in-memory).");
}
else if (TemporaryPostgresCluster.FindBinDirectory() is not null)
{
    Console.WriteLine("Starting a throwaway PostgreSQL server...");
    cluster = await TemporaryPostgresCluster.StartAsync();
    connection = cluster.ConnectionString();
    Console.WriteLine($"PostgreSQL is listening on 127.0.0.1:{cluster.Port}; the queue lives in schema 'scheduling'.");
}
else
{
    Console.WriteLine("PostgreSQL server binaries were not found (install 'postgresql', or pass --connection to use a server you have); running on the in-memory queue.");
}

try
{
    var stats = new SampleStats();
    var builder = Host.CreateApplicationBuilder(args);
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    builder.Services.AddSingleton(stats);
    builder.Services.AddScheduling(scheduling =>
    {
        if (connection is not null) scheduling.UsePostgres(connection);
        scheduling.Configure(o =>
        {
            o.AddQueue("images", concurrency: 16);
            o.AddQueue("email", concurrency: 8);
            o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromSeconds(1) };
        });
        scheduling.AddHandler<ResizeImage, ImageJob>("resize-image");
        scheduling.AddHandler<SendEmail, EmailJob>("send-email");
        scheduling.AddHandler<string>("report-step", (context, _) =>
        {
            stats.Step(context.Payload);
            stats.Success();
            return Task.CompletedTask;
        });
    });

    using var host = builder.Build();
    await host.StartAsync();
    var queue = host.Services.GetRequiredService<IJobQueue>();

    var clock = Stopwatch.StartNew();
    await queue.EnqueueManyAsync(Enumerable.Range(0, Images).Select(i => new JobRequest("resize-image", new ImageJob($"photo-{i}.jpg", 640)) { Queue = "images" }).ToArray());
    await queue.EnqueueManyAsync(Enumerable.Range(0, Emails).Select(i => new JobRequest("send-email", new EmailJob($"user{i}@example.com")) { Queue = "email", MaxAttempts = 3 }).ToArray());
    // A small graph in one atomic call: extract, then two transforms in parallel, then publish.
    JobRequest Step(string name, params string[] after) => new("report-step", name)
    {
        Queue = "images", LocalKey = name, DependsOn = after.Select(JobDependency.OnRequest).ToArray(),
    };
    await queue.EnqueueManyAsync([Step("publish", "transform-a", "transform-b"), Step("transform-a", "extract"), Step("transform-b", "extract"), Step("extract")]);
    Console.WriteLine($"Enqueued {Images + Emails + ReportSteps} jobs in {clock.ElapsedMilliseconds} ms.");

    const int total = Images + Emails + ReportSteps;
    while (stats.Finished < total)
    {
        Console.Write($"\r  processed {stats.Finished,5}/{total}  succeeded {stats.Succeeded,5}  retried {stats.Retried,4}  dead {stats.Dead,3}  ");
        await Task.Delay(250);
    }

    clock.Stop();
    Console.WriteLine($"\r  processed {stats.Finished,5}/{total}  succeeded {stats.Succeeded,5}  retried {stats.Retried,4}  dead {stats.Dead,3}  ");
    await host.StopAsync();
    Console.WriteLine();
    Console.WriteLine($"Summary: {total} jobs in {clock.Elapsed.TotalSeconds:F1} s ({total / clock.Elapsed.TotalSeconds:F0} jobs/s) on the {(connection is null ? "in-memory" : "PostgreSQL")} queue; {stats.Retried} retries, {stats.Dead} dead.");
    Console.WriteLine($"Report pipeline ran parents first: {string.Join(" -> ", stats.Steps)}.");
    Console.WriteLine("Shut down cleanly.");
    return 0;
}
finally
{
    if (cluster is not null) await cluster.DisposeAsync();
}

internal sealed record ImageJob(string Path, int Width);

internal sealed record EmailJob(string To);

internal sealed class SampleStats
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _steps = new();
    private int _succeeded, _retried, _dead;
    public IEnumerable<string> Steps => _steps;
    public void Step(string name) => _steps.Enqueue(name);
    public int Succeeded => Volatile.Read(ref _succeeded);
    public int Retried => Volatile.Read(ref _retried);
    public int Dead => Volatile.Read(ref _dead);
    public int Finished => Succeeded + Dead;
    public void Success() => Interlocked.Increment(ref _succeeded);

    public Exception Failure(AcquiredJob job, string message)
    {
        if (job.Attempt < job.MaxAttempts) Interlocked.Increment(ref _retried);
        else Interlocked.Increment(ref _dead);
        return new InvalidOperationException(message);
    }
}

internal sealed class ResizeImage(SampleStats stats) : IJobHandler<ImageJob>
{
    public async Task HandleAsync(JobContext<ImageJob> context, CancellationToken cancellationToken)
    {
        await Task.Delay(1, cancellationToken); // stands in for the work
        stats.Success();
    }
}

internal sealed class SendEmail(SampleStats stats) : IJobHandler<EmailJob>
{
    public Task HandleAsync(JobContext<EmailJob> context, CancellationToken cancellationToken)
    {
        // About one mail in five meets a flaky server: most recover on retry, a few never do.
        var hash = context.Payload.To.Aggregate(17, (h, c) => unchecked(h * 31 + c)) & 0x7fffffff; // stable across runs
        var failsUntil = hash % 5 == 0 ? 1 + hash / 5 % 4 : 0;
        if (context.Job.Attempt <= failsUntil) throw stats.Failure(context.Job, $"SMTP server refused {context.Payload.To} (attempt {context.Job.Attempt})");
        stats.Success();
        return Task.CompletedTask;
    }
}
