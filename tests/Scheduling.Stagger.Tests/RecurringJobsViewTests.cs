using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Stagger.Tests;

/// <summary>The plan a host's scheduler shows (IRecurringJobsView): each job's crons, offset and next ticks, and the busiest hour with and without stagger.</summary>
public sealed class RecurringJobsViewTests
{
    [Fact]
    public async Task The_view_shows_each_jobs_offset_and_next_ticks_and_the_peak_the_offsets_remove()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 5, 8, 0, 30, TimeSpan.Zero));
        var services = new ServiceCollection().AddLogging().AddSingleton<TimeProvider>(time);
        services.AddSingleton<IJobQueue>(new InMemoryJobQueue(null, time));
        services.AddScheduling(s =>
        {
            s.Configure(o => o.RunWorkers = false).UseStagger(o => o.DefaultStrategy = StaggerStrategy.Plan);
            for (var i = 0; i < 8; i++) s.AddRecurringJob($"report-{i}", "0 * * * *", new JobRequest("report"), j => j.ExpectedDuration = TimeSpan.FromSeconds(5));
        });
        await using var host = services.BuildServiceProvider();
        var view = host.GetRequiredService<IRecurringJobsView>();
        Assert.Null(view.Current); // nothing planned before the scheduler ran
        var scheduler = host.GetServices<IHostedService>().OfType<RecurringJobScheduler>().Single();
        await scheduler.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(() => Task.FromResult(scheduler.SleepingUntil is not null), "the first pass is done");

        var plan = view.Current!;
        await scheduler.StopAsync(CancellationToken.None);

        Assert.Same(scheduler, view);
        Assert.Equal(8, plan.Jobs.Count);
        var first = plan.Jobs[0];
        Assert.Equal(("report-0", "report", "default", "0 * * * *", StaggerSource.Planned), (first.Name, first.Kind, first.Queue, first.Stagger.OriginalExpression, first.Stagger.Source));
        Assert.Equal(TimeSpan.FromSeconds(5), first.ExpectedDuration);
        Assert.Equal([9, 10, 11], first.NextTicks.Select(t => t.Hour));
        Assert.All(first.NextTicks, t => Assert.Equal(first.Stagger.OffsetSeconds, t.Second + 60 * t.Minute));
        Assert.Equal(8, plan.Jobs.Select(j => j.Stagger.OffsetSeconds).Distinct().Count()); // spread apart

        Assert.Equal(8, plan.Peak.Unstaggered);
        Assert.Equal(1, plan.Peak.Staggered); // 5 s runs, 8 offsets: never two at once
        Assert.Equal((120, 120), (plan.Unstaggered.Count, plan.Staggered.Count)); // one hour in 30 s steps
        Assert.Equal(8, plan.Unstaggered.Max());
        Assert.Equal(plan.Peak.Staggered, plan.Staggered.Max());
        Assert.Equal(0, plan.BusiestHour.Minute);
    }
}
