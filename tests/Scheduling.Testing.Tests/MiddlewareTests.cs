using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Scheduling.Testing.Tests;

/// <summary>A scoped service the middleware fills and the handler reads: one per attempt.</summary>
public sealed class TenantContext
{
    public string? Tenant { get; set; }
}

public sealed class TenantMiddleware(TenantContext tenant, List<string> trace) : IJobMiddleware
{
    public async Task InvokeAsync(JobExecutingContext context, Func<Task> proceed)
    {
        tenant.Tenant = context.Job.Queue; // stands in for reading it from the payload or a header
        trace.Add("tenant:before");
        await proceed();
        trace.Add("tenant:after");
    }
}

public sealed class TenantHandler(TenantContext tenant, List<string> trace) : IJobHandler<int>
{
    public Task HandleAsync(JobContext<int> context, CancellationToken cancellationToken)
    {
        trace.Add($"handler:{tenant.Tenant}");
        return Task.CompletedTask;
    }
}

public sealed class MiddlewareTests
{
    private static TestHost Host(List<string> trace, Action<SchedulingBuilder> middleware) => new(TestingMode.Manual, s =>
    {
        s.Services.AddSingleton(trace).AddScoped<TenantContext>();
        middleware(s);
        s.AddHandler<TenantHandler, int>("tenant-job");
    });

    [Fact]
    public async Task Middleware_run_in_registration_order_around_the_handler_and_share_its_scope()
    {
        var trace = new List<string>();
        using var host = Host(trace, s => s
            .UseMiddleware(async (ctx, proceed) => { trace.Add("outer:before"); ctx.Items["seen"] = true; await proceed(); trace.Add("outer:after"); })
            .UseMiddleware<TenantMiddleware>());
        await host.Queue.EnqueueAsync(new JobRequest("tenant-job", 1) { Queue = "acme" });

        var summary = await host.Runner.RunPendingAsync();

        Assert.Equal(1, summary.Succeeded);
        Assert.Equal(["outer:before", "tenant:before", "handler:acme", "tenant:after", "outer:after"], trace);
    }

    [Fact]
    public async Task Middleware_can_short_circuit_fail_or_snooze_the_attempt()
    {
        var trace = new List<string>();
        var mode = "skip";
        using var host = Host(trace, s => s.UseMiddleware((ctx, proceed) => mode switch
        {
            "skip" => Task.CompletedTask, // the handler never runs; the attempt succeeds
            "deny" => throw new PermanentJobFailureException("tenant not authorised"),
            "later" => throw new SnoozeJobException(TimeSpan.FromMinutes(5)),
            _ => proceed(),
        }));
        var skipped = (await host.Queue.EnqueueAsync(new JobRequest("tenant-job", 1))).JobId;
        await host.Runner.RunPendingAsync();
        mode = "deny";
        var denied = (await host.Queue.EnqueueAsync(new JobRequest("tenant-job", 2))).JobId;
        await host.Runner.RunPendingAsync();
        mode = "later";
        var snoozed = (await host.Queue.EnqueueAsync(new JobRequest("tenant-job", 3))).JobId;
        await host.Runner.RunPendingAsync(new TestRunOptions { SkipBackoff = false });

        Assert.Empty(trace);
        Assert.Equal(JobState.Succeeded, (await host.Queue.GetJobAsync(skipped))!.State);
        var dead = (await host.Queue.GetJobAsync(denied))!;
        Assert.Equal(JobState.Dead, dead.State);
        Assert.Contains("tenant not authorised", Assert.Single(dead.Errors).Message, StringComparison.Ordinal);
        var later = (await host.Queue.GetJobAsync(snoozed))!;
        Assert.Equal((JobState.Scheduled, 0, 1), (later.State, later.Attempt, later.Snoozes));
    }
}
