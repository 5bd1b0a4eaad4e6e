using Microsoft.Extensions.Time.Testing;

namespace Scheduling.QueueContract;

/// <summary>
/// Drives a fake clock deterministically: it advances only while every loop it drives sleeps, and
/// then exactly to the earliest wake-up, so no outcome depends on how fast real threads run (a busy
/// machine slows the test, it cannot change it).
/// </summary>
public static class SleeperClock
{
    /// <param name="time">The fake clock.</param>
    /// <param name="span">How far to advance it in all.</param>
    /// <param name="sleepers">Until when each driven loop sleeps (null while it works).</param>
    public static async Task RunAsync(FakeTimeProvider time, TimeSpan span, Func<IEnumerable<DateTimeOffset?>> sleepers)
    {
        var end = time.GetUtcNow() + span;
        while (true)
        {
            // Each loop has reacted to the last advance once it sleeps until a time still to come.
            await Eventually.HoldsAsync(() => sleepers().All(until => until > time.GetUtcNow()), "every loop sleeps until a time to come", TimeSpan.FromMinutes(2));
            var now = time.GetUtcNow();
            if (now >= end) return;
            var next = sleepers().Min()!.Value;
            time.Advance((next < end ? next : end) - now);
        }
    }
}
