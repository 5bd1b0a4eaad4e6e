// The sample: a few thousand jobs of two kinds, some failing and retrying, processed by the
// worker host with live progress and a summary. Where the jobs live:
//   --connection "Host=...;Username=...;Password=..."   an existing PostgreSQL server (schema 'scheduling')
//   --in-memory                                         the in-memory queue
//   neither                                             a throwaway local PostgreSQL when its server binaries
//                                                       are installed, otherwise the in-memory queue (and it says so)
// --dashboard also serves the dashboard at http://127.0.0.1:5080/scheduling, and keeps it up until Ctrl+C.
using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Scheduling;
using Scheduling.Dashboard;
using Scheduling.LocalPostgres;
using Scheduling.Sample;

const int Images = 2000;
const int Emails = 1000;
const int ReportSteps = 4;

const string DashboardUrl = "http://127.0.0.1:5080";
var dashboard = args.Contains("--dashboard");
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
    void Configure(IServiceCollection services, ILoggingBuilder logging)
    {
        logging.SetMinimumLevel(LogLevel.Warning);
        services.AddSingleton(stats);
        services.AddScheduling(scheduling =>
        {
            if (connection is not null) scheduling.UsePostgres(connection);
            SampleJobs.Register(scheduling);
        });
    }

    IHost host;
    if (dashboard)
    {
        // The same host, plus Kestrel on this machine only and the dashboard at /scheduling. It is open to
        // anyone who can reach the port, so it listens on loopback; an app names a policy instead (docs/dashboard.md).
        var web = WebApplication.CreateSlimBuilder();
        web.WebHost.UseUrls(DashboardUrl);
        Configure(web.Services, web.Logging);
        web.Services.AddSchedulingDashboard(o => o.AllowAnonymous = true);
        var app = web.Build();
        app.MapSchedulingDashboard("/scheduling");
        host = app;
    }
    else
    {
        var builder = Host.CreateApplicationBuilder(args);
        Configure(builder.Services, builder.Logging);
        host = builder.Build();
    }

    using var disposeHost = host;
    await host.StartAsync();
    if (dashboard) Console.WriteLine($"Dashboard: {DashboardUrl}/scheduling (the sample keeps serving it once the jobs are done; Ctrl+C stops it).");
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
    if (dashboard)
    {
        Console.WriteLine($"All jobs are done; the dashboard stays up at {DashboardUrl}/scheduling until Ctrl+C.");
        await host.WaitForShutdownAsync();
    }

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
