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
using Scheduling.Sample;

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
        SampleJobs.Register(scheduling);
    });

    using var host = builder.Build();
    await host.StartAsync();
    var queue = host.Services.GetRequiredService<IJobQueue>();

    var clock = Stopwatch.StartNew();
    await queue.EnqueueManyAsync(Enumerable.Range(0, Images).Select(i => new JobRequest("resize-image", new ImageJob($"photo-{i}.jpg", 640)) { Queue = "images" }).ToArray());
    var campaign = await queue.EnqueueBatchAsync(SampleJobs.EmailCampaign(Emails));
    await queue.EnqueueManyAsync(SampleJobs.ReportPipeline());
    const int total = Images + Emails + 1 + ReportSteps; // the campaign's callback is a job too
    Console.WriteLine($"Enqueued {total} jobs in {clock.ElapsedMilliseconds} ms.");

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
    Console.WriteLine($"Report pipeline ran parents first: {string.Join(" -> ", stats.Steps)}; publish received {stats.PublishedRows} rows from its parents' results.");
    Console.WriteLine($"Email campaign batch {campaign.BatchId}: its on-complete callback counted {stats.Campaign?.Sent} sent and {stats.Campaign?.Dead} dead.");
    Console.WriteLine("Shut down cleanly.");
    return 0;
}
finally
{
    if (cluster is not null) await cluster.DisposeAsync();
}
