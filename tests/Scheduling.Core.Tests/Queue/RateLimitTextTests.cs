using Xunit;

namespace Scheduling.Core.Tests.Queue;

/// <summary>A rate as people write it (the CLI's options, the dashboard's form) and as it is printed.</summary>
public sealed class RateLimitTextTests
{
    [Theory]
    [InlineData("10/s", 10, 1_000, "10/1s")]
    [InlineData("100/1m", 100, 60_000, "100/1m")]
    [InlineData("5/500ms", 5, 500, "5/500ms")]
    [InlineData("3/1.5s", 3, 1_500, "3/1500ms")]
    [InlineData("1/d", 1, 86_400_000, "1/1d")]
    public void A_rate_is_read_and_printed_back(string text, int count, int periodMs, string printed)
    {
        Assert.True(RateLimit.TryParse(text, out var rate, out var problem));
        Assert.Equal((count, TimeSpan.FromMilliseconds(periodMs), ""), (rate.Count, rate.Period, problem));
        Assert.Equal(printed, rate.ToString());
        Assert.True(RateLimit.TryParse(rate.ToString(), out var again, out _));
        Assert.Equal(rate, again);
    }

    [Theory]
    [InlineData("fast", "is not COUNT/PERIOD")]
    [InlineData("10/", "has no period unit")]
    [InlineData("10/w", "has no period unit")]
    [InlineData("0/s", "is out of range")]
    [InlineData("1/2d", "is out of range")]
    [InlineData(null, "is not COUNT/PERIOD")]
    public void A_bad_rate_says_what_is_wrong(string? text, string problem)
    {
        Assert.False(RateLimit.TryParse(text, out var rate, out var said));
        Assert.Null(rate);
        Assert.StartsWith(problem, said, StringComparison.Ordinal);
    }
}
