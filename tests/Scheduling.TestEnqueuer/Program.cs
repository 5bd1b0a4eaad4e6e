// A separate process for cross-process tests.
//   enqueue CONNSTRING SCHEMA QUEUE KIND COUNT   enqueue COUNT jobs inside a traced "request"; print "jobId traceId spanId" per job
//   work    CONNSTRING SCHEMA QUEUE KIND CONCURRENCY [PREFETCH]   run a worker host whose KIND handler prints "started jobId" and never finishes
//   effects CONNSTRING SCHEMA QUEUE KIND CONCURRENCY   run a worker host whose KIND handler writes one row to SCHEMA.effects and
//           completes its job in the same transaction (PostgresJobQueue.CompleteWithinAsync), pausing at random in between: for kill tests
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

if (mode == "effects")
{
    await using var effects = NpgsqlDataSource.Create(connection);
    PostgresJobQueue? jobs = null;
    var services = new ServiceCollection().AddLogging();
    services.AddScheduling(s => s
        .UsePostgres(connection, o => o.Schema = schema)
        .Configure(o =>
        {
            o.AddQueue(queueName, count);
            o.LeaseDuration = TimeSpan.FromSeconds(2);
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
            o.RescueInterval = TimeSpan.FromMilliseconds(300);
        })
        .AddHandler<int>(kind, async (ctx, ct) =>
        {
            await using var connectionForJob = await effects.OpenConnectionAsync(ct);
            await using var transaction = await connectionForJob.BeginTransactionAsync(ct);
            await using (var insert = new NpgsqlCommand($"INSERT INTO \"{schema}\".effects (job_id) VALUES ($1)", connectionForJob, transaction))
            {
                insert.Parameters.AddWithValue(ctx.Job.Id);
                await insert.ExecuteNonQueryAsync(ct);
            }

            await Task.Delay(Random.Shared.Next(5, 60), ct); // a kill lands inside the transaction as often as not
            await jobs!.CompleteWithinAsync(ctx, transaction, ct);
            await transaction.CommitAsync(ct);
            await Task.Delay(Random.Shared.Next(5, 60), ct); // and after it: where an acknowledgement written apart from the effect would be lost
        }));
    await using var provider = services.BuildServiceProvider();
    jobs = (PostgresJobQueue)provider.GetRequiredService<IJobQueue>();
    foreach (var hosted in provider.GetServices<IHostedService>()) await hosted.StartAsync(CancellationToken.None);
    Console.WriteLine("ready");
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
