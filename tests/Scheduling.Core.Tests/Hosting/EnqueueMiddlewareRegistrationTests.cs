using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Scheduling.Core.Tests.Hosting;

/// <summary>UseEnqueueMiddleware: class and delegate middleware around the host's queue, in registration order.</summary>
public sealed class EnqueueMiddlewareRegistrationTests
{
    private sealed class Trail
    {
        public List<string> Steps { get; } = [];
    }

    private sealed class TenantStamp(Trail trail) : IEnqueueMiddleware
    {
        public async Task InvokeAsync(EnqueueContext context, Func<Task> proceed)
        {
            trail.Steps.Add("class");
            context.Requests = context.Requests.Select(r => r with { PartitionKey = "tenant-1" }).ToArray();
            await proceed();
        }
    }

    [Fact]
    public async Task Class_and_delegate_middleware_wrap_the_hosts_queue_in_registration_order()
    {
        var trail = new Trail();
        var services = new ServiceCollection().AddLogging().AddSingleton(trail);
        services.AddScheduling(s => s
            .UseEnqueueMiddleware((context, proceed) => { trail.Steps.Add("first"); return proceed(); })
            .UseEnqueueMiddleware<TenantStamp>()
            .UseEnqueueMiddleware((context, proceed) => { trail.Steps.Add($"last:{context.Requests[0].PartitionKey}"); return proceed(); }));
        await using var provider = services.BuildServiceProvider();
        var queue = provider.GetRequiredService<IJobQueue>();

        var id = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;

        Assert.Equal(["first", "class", "last:tenant-1"], trail.Steps);
        Assert.Equal("tenant-1", (await queue.GetJobAsync(id))!.PartitionKey);
    }
}
