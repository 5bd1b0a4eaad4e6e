using Xunit;

namespace Scheduling.Testing.Tests;

public sealed class TestJobContextTests
{
    private sealed record Invoice(string Customer, decimal Amount);

    private sealed class SendInvoice : IJobHandler<Invoice>
    {
        public List<string> Sent { get; } = [];

        public Task HandleAsync(JobContext<Invoice> context, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (context.Job.Attempt == context.Job.MaxAttempts) Sent.Add($"last try for {context.Payload.Customer}");
            else Sent.Add($"{context.Payload.Customer}: {context.Payload.Amount}");
            context.Usage.PeakMemoryMb = 64;
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task A_handler_called_directly_sees_its_payload_and_attempt_and_reports_usage_through_the_context()
    {
        var handler = new SendInvoice();
        var first = TestJobContext.Create(new Invoice("ada", 12.5m));
        await handler.HandleAsync(first, CancellationToken.None);
        await handler.HandleAsync(TestJobContext.Create(new Invoice("bob", 1m), new TestJob { Kind = "send-invoice", Attempt = 3, MaxAttempts = 3 }), CancellationToken.None);

        Assert.Equal(["ada: 12.5", "last try for bob"], handler.Sent);
        Assert.Equal(64, first.Usage.PeakMemoryMb);
        Assert.Equal((1, 25, "test", "default"), (first.Job.Attempt, first.Job.MaxAttempts, first.Job.Kind, first.Job.Queue));
        Assert.Contains("\"customer\":\"ada\"", first.Job.PayloadJson, StringComparison.Ordinal); // as the queue would store it
    }

    [Fact]
    public async Task A_cancelled_token_reaches_the_handler()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAsync<OperationCanceledException>(() => new SendInvoice().HandleAsync(TestJobContext.Create(new Invoice("ada", 1m)), cancelled.Token));
    }

    [Theory]
    [InlineData(0, 25)]
    [InlineData(4, 3)]
    [InlineData(1, 0)]
    public void An_impossible_attempt_is_refused_naming_it(int attempt, int maxAttempts)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => TestJobContext.Create("x", new TestJob { Attempt = attempt, MaxAttempts = maxAttempts }));
        Assert.Contains(maxAttempts < 1 ? "MaxAttempts" : "TestJob.Attempt", error.Message, StringComparison.Ordinal);
    }
}
