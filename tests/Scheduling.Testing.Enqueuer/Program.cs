// usage: Scheduling.Testing.Enqueuer CONNSTRING SCHEMA QUEUE KIND COUNT
// Enqueues COUNT jobs inside a traced "request" and prints, per job, "jobId traceId spanId" of its send span.
using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Scheduling;
using Scheduling.Postgres;

var (connection, schema, queueName, kind, count) = (args[0], args[1], args[2], args[3], int.Parse(args[4], CultureInfo.InvariantCulture));
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
