using Scheduling.Hosting;
using Xunit;

namespace Scheduling.Core.Tests.Hosting;

public sealed class PrefetchSizingTests
{
    [Fact]
    public void Short_jobs_are_fetched_hundreds_at_a_time_and_long_ones_four_per_slot()
    {
        var sizing = new PrefetchSizing(new QueueWorkerOptions { Concurrency = 8 });
        Assert.Equal(32, sizing.Held); // nothing measured yet: 4 per slot
        Assert.Equal(32, sizing.MaxFetch);

        for (var i = 0; i < 200; i++) sizing.Observe(TimeSpan.FromMilliseconds(0.05));
        Assert.Equal(8 * PrefetchSizing.MaxMultiplier, sizing.Held); // 100 ms of 50 µs jobs is far more than the cap
        Assert.Equal(2000, sizing.MaxFetch);

        for (var i = 0; i < 200; i++) sizing.Observe(TimeSpan.FromMilliseconds(10));
        Assert.InRange(sizing.Held, 8 * 9, 8 * 11); // about 100 ms of 10 ms jobs per slot

        for (var i = 0; i < 200; i++) sizing.Observe(TimeSpan.FromSeconds(2));
        Assert.Equal(32, sizing.Held); // long jobs: back to 4 per slot
    }

    [Fact]
    public void Explicit_settings_are_used_as_given()
    {
        var prefetch = new PrefetchSizing(new QueueWorkerOptions { Concurrency = 8, Prefetch = 8 });
        for (var i = 0; i < 100; i++) prefetch.Observe(TimeSpan.FromMilliseconds(0.01));
        Assert.Equal(8, prefetch.Held);

        var single = new PrefetchSizing(new QueueWorkerOptions { Concurrency = 8, FetchBatchSize = 1 });
        for (var i = 0; i < 100; i++) single.Observe(TimeSpan.FromMilliseconds(0.01));
        Assert.Equal(32, single.Held);
        Assert.Equal(8, single.Loops); // fetches of one: a loop per slot keeps the prefetch full
        Assert.Equal(1, single.MaxFetch);
    }
}
