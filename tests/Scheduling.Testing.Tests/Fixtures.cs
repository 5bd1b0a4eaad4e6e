using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Scheduling.Testing.Tests;

public sealed record EmailJob(string To);

/// <summary>Records what it sent; fails the first <see cref="FailFirst"/> attempts of each job.</summary>
public sealed class Outbox
{
    public List<string> Sent { get; } = [];
    public int FailFirst { get; set; }
}

public sealed class SendEmail(Outbox outbox) : IJobHandler<EmailJob>
{
    public Task HandleAsync(JobContext<EmailJob> context, CancellationToken cancellationToken)
    {
        if (context.Job.Attempt <= outbox.FailFirst) throw new InvalidOperationException($"SMTP refused {context.Payload.To} (attempt {context.Job.Attempt})");
        outbox.Sent.Add(context.Payload.To);
        return Task.CompletedTask;
    }
}

/// <summary>A host's services with Scheduling in a testing mode.</summary>
public sealed class TestHost : IDisposable
{
    private readonly ServiceProvider _provider;

    public TestHost(TestingMode mode, Action<SchedulingBuilder>? configure = null)
    {
        var services = new ServiceCollection().AddLogging().AddSingleton<Outbox>();
        services.AddScheduling(s =>
        {
            s.Configure(o => o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMinutes(1), Jitter = RetryJitter.None });
            s.AddHandler<SendEmail, EmailJob>("send-email");
            configure?.Invoke(s);
            s.UseTesting(mode);
        });
        _provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
    }

    public IJobQueue Queue => _provider.GetRequiredService<IJobQueue>();
    public TestJobRunner Runner => _provider.GetRequiredService<TestJobRunner>();
    public Outbox Outbox => _provider.GetRequiredService<Outbox>();
    public FakeTimeProvider Clock => _provider.GetRequiredService<FakeTimeProvider>();

    public void Dispose() => _provider.Dispose();
}
