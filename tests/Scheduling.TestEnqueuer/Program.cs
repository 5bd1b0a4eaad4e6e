// A separate process for cross-process tests.
//   enqueue CONNSTRING SCHEMA QUEUE KIND COUNT   enqueue COUNT jobs inside a traced "request"; print "jobId traceId spanId" per job
//   work    CONNSTRING SCHEMA QUEUE KIND CONCURRENCY [PREFETCH]   run a worker host whose KIND handler prints "started jobId" and never finishes
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Scheduling;
using Scheduling.Postgres;

var (mode, connection, schema, queueName, kind, count) = (args[0], args[1], args[2], args[3], args[4], int.Parse(args[5], CultureInfo.InvariantCulture));
if (mode == "work")
{
    var services = new ServiceCollection().AddLogging();
    services.AddScheduling(s => s
        .UsePostgres(connection, o => o.Schema = schema)
        .Configure(o =>
        {
            o.AddQueue(queueName, count);
            if (args.Length > 6) o.Queues[queueName].Prefetch = o.Queues[queueName].FetchBatchSize = int.Parse(args[6], System.Globalization.CultureInfo.InvariantCulture);
            o.LeaseDuration = TimeSpan.FromSeconds(3);
            o.HeartbeatInterval = TimeSpan.FromSeconds(1);
        })
        .AddHandler<int>(kind, async (ctx, ct) =>
        {
            Console.WriteLine($"started {ctx.Job.Id}");
            await Task.Delay(Timeout.Infinite, ct);
        }));
    await using var provider = services.BuildServiceProvider();
    foreach (var hosted in provider.GetServices<IHostedService>()) await hosted.StartAsync(CancellationToken.None);
    await Task.Delay(Timeout.Infinite); // until killed
    return;
}

var sends = new List<Activity>();
using var listener = new ActivityListener
{
    ShouldListenTo = s => s.Name is "Scheduling" or "Enqueuer",
    Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
    ActivityStopped = a => { if (a.Kind == ActivityKind.Producer) lock (sends) sends.Add(a); },
};
ActivitySource.AddActivityListener(listener);
using var source = new ActivitySource("Enqueuer");
await using var dataSource = NpgsqlDataSource.Create(connection);
var queue = new PostgresJobQueue(dataSource, new PostgresQueueOptions { Schema = schema });
using (source.StartActivity("request"))
{
    for (var i = 0; i < count; i++)
    {
        var id = (await queue.EnqueueAsync(new JobRequest(kind, i) { Queue = queueName })).JobId;
        var send = sends[^1];
        Console.WriteLine($"{id} {send.TraceId} {send.SpanId}");
    }
}
