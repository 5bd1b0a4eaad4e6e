using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Core.Tests.Ara;

/// <summary>The job side of docs/ara.md, as written there (in memory instead of PostgreSQL).</summary>
public sealed class AraFromTheJobSide
{
    [Fact]
    public async Task A_handler_reads_its_allocation_reports_its_peak_and_the_next_run_of_the_command_is_sized_from_it()
    {
        var given = new ConcurrentQueue<(AllocationSource? Source, int? MemoryMb)>();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddScheduling(s => s
            .AddHandler<string>("etl", async (context, cancellationToken) =>
            {
                var memoryMb = context.Job.Allocation?.MemoryMb;
                given.Enqueue((context.Job.Allocation?.Source, memoryMb));
                var peakMb = await RunContainerAsync(context.Payload, memoryMb, cancellationToken);
                context.Usage.PeakMemoryMb = peakMb;
            }));
        using var host = builder.Build();
        await host.StartAsync();
        var queue = host.Services.GetRequiredService<IJobQueue>();

        JobRequest Etl() => new("etl", "orders") { Command = "python etl.py --table orders", Definition = new JobDefinition("etl", BaselineMemoryMb: 4096) };
        var first = await queue.EnqueueAsync(Etl());
        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(first.JobId))!.State == JobState.Succeeded, "the first run succeeds");
        var second = await queue.EnqueueAsync(Etl());
        await Eventually.HoldsAsync(async () => (await queue.GetJobAsync(second.JobId))!.State == JobState.Succeeded, "the second run succeeds");
        await host.StopAsync();

        var runs = given.ToArray();
        Assert.Equal((AllocationSource.Baseline, 4096), (runs[0].Source, runs[0].MemoryMb)); // no history yet
        Assert.Equal(AllocationSource.CommandHistory, runs[1].Source); // learned from the first run's reported peak
        Assert.True(runs[1].MemoryMb < 4096, $"sized {runs[1].MemoryMb} MB from a 1,500 MB peak");
    }

    private static Task<int> RunContainerAsync(string table, int? memoryMb, CancellationToken cancellationToken) =>
        Task.FromResult(table.Length > 0 && memoryMb > 0 ? 1500 : 0);
}
