using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests.Hosting;

/// <summary>A trace crosses the queue between processes: enqueued by a child process, processed here (with a retry).</summary>
public sealed class TracingAcrossProcessesTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task Consumer_spans_here_are_children_of_send_spans_made_in_another_process()
    {
        var schema = database.NewSchema();
        var spans = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == "Scheduling",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Add,
        };
        ActivitySource.AddActivityListener(listener);

        // Enqueue in a child process.
        var (exit, output, error) = await ToolProcess.RunAsync("Scheduling.TestEnqueuer.dll", ["enqueue", database.ConnectionString, schema, "crossing", "traced", "6"]);
        Assert.True(exit == 0, error);
        var sent = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).ToDictionary(f => f[0], f => (TraceId: f[1], SpanId: f[2].Trim()));
        Assert.Equal(6, sent.Count);

        // Process here; the first attempt of every job fails, so each has two consumer spans.
        var attempts = new ConcurrentDictionary<long, int>();
        var services = new ServiceCollection().AddLogging();
        services.AddScheduling(s => s
            .UsePostgres(database.ConnectionString, o => o.Schema = schema)
            .Configure(o => { o.AddQueue("crossing", 4); o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(5), MaxDelay = TimeSpan.FromMilliseconds(20) }; })
            .AddHandler<int>("traced", (ctx, _) => attempts.AddOrUpdate(ctx.Job.Id, 1, (_, n) => n + 1) == 1 ? throw new InvalidOperationException("retry me") : Task.CompletedTask));
        await using var provider = services.BuildServiceProvider();
        var host = provider.GetServices<IHostedService>().OfType<BackgroundService>().First(h => h.GetType().Name == "WorkerHost");
        await host.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(() => spans.Count(s => s.Kind == ActivityKind.Consumer && s.GetTagItem("messaging.destination.name") as string == "crossing") == 12, "6 jobs run twice each");
        await host.StopAsync(CancellationToken.None);

        var consumers = spans.Where(s => s.Kind == ActivityKind.Consumer && s.GetTagItem("messaging.destination.name") as string == "crossing").ToList();
        foreach (var consumer in consumers)
        {
            var (traceId, spanId) = sent[(string)consumer.GetTagItem("messaging.message.id")!];
            Assert.Equal(traceId, consumer.TraceId.ToString());
            Assert.Equal(spanId, consumer.ParentSpanId.ToString());
        }
    }
}
