using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Scheduling.Core.Tests;

/// <summary>Invariant: a retry delay lies in [0, min(cap, base * 2^(attempt-1))], and without jitter equals that bound.</summary>
public sealed class RetryBackoffIsBoundedExponentialWithFullJitter
{
    [Fact]
    public void Delay_is_within_the_capped_exponential_bound()
    {
        var inputs =
            from attempt in Gen.Choose(1, 200)
            from baseMs in Gen.Choose(0, 10_000)
            from capMs in Gen.Choose(0, 3_600_000)
            from seed in Gen.Choose(0, int.MaxValue)
            select (attempt, baseMs, capMs: Math.Max(capMs, baseMs), seed);

        Prop.ForAll(Arb.From(inputs), input =>
        {
            var options = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(input.baseMs), MaxDelay = TimeSpan.FromMilliseconds(input.capMs) };
            var bound = Math.Min(input.capMs, input.baseMs * Math.Pow(2, input.attempt - 1));
            var jittered = RetryBackoff.Delay(input.attempt, options, new Random(input.seed));
            options.Jitter = RetryJitter.None;
            var exact = RetryBackoff.Delay(input.attempt, options, new Random(input.seed));
            return jittered >= TimeSpan.Zero && jittered.TotalMilliseconds <= bound && exact.TotalMilliseconds == Math.Floor(bound);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(500));
    }

    [Fact]
    public void Full_jitter_spreads_delays_across_the_range()
    {
        var options = new RetryBackoffOptions { BaseDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromHours(1) };
        var random = new Random(42);
        var delays = Enumerable.Range(0, 1000).Select(_ => RetryBackoff.Delay(4, options, random).TotalMilliseconds).ToArray();

        Assert.InRange(delays.Min(), 0, 800);
        Assert.InRange(delays.Max(), 7200, 8000);
        Assert.InRange(delays.Average(), 3600, 4400);
    }
}
