using System.Text.Json;
using System.Text.Json.Serialization;
using Xunit;

namespace Scheduling.Testing.Tests;

public sealed record Unlisted(string Name);

/// <summary>The payload and result types of the host below, and no others.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(EmailJob))]
[JsonSerializable(typeof(Extracted))]
internal sealed partial class PayloadsContext : JsonSerializerContext;

public sealed class SourceGeneratedJsonTests
{
    [Fact]
    public async Task Payloads_and_results_go_through_the_source_generated_context_only()
    {
        var seen = new List<Extracted?>();
        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web) { TypeInfoResolver = PayloadsContext.Default };
        using var host = new TestHost(TestingMode.Manual, s => s
            .UseJsonSerializerOptions(json)
            .AddHandler<EmailJob>("count", (ctx, _) =>
            {
                ctx.SetResult(new Extracted(ctx.Payload.To.Length));
                return Task.CompletedTask;
            })
            .AddHandler<EmailJob?>("report", async (ctx, ct) =>
            {
                foreach (var parent in await ctx.ParentResultsAsync(ct)) seen.Add(parent.Value<Extracted>(json));
            }));
        var ids = await host.Queue.EnqueueManyAsync(
        [
            new JobRequest("count", new EmailJob("ada@example.com")) { LocalKey = "c" },
            new JobRequest("report") { DependsOn = [JobDependency.OnRequest("c")] },
        ]);

        await host.Runner.RunPendingAsync();

        Assert.Equal([new Extracted("ada@example.com".Length)], seen);
        Assert.Equal("""{"to":"ada@example.com"}""", (await host.Queue.GetJobAsync(ids[0].JobId))!.PayloadJson);
        Assert.Equal("""{"rows":15}""", (await host.Queue.GetJobAsync(ids[0].JobId))!.ResultJson);

        // A type the context does not name is refused at enqueue, naming it, rather than read by reflection.
        var refused = await Assert.ThrowsAsync<ArgumentException>(async () => await host.Queue.EnqueueAsync(new JobRequest("count", new Unlisted("x"))));
        Assert.Contains(nameof(Unlisted), refused.Message, StringComparison.Ordinal);
        Assert.Equal("request.Payload", refused.ParamName);
    }
}
