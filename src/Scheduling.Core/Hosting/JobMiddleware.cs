namespace Scheduling;

/// <summary>What execution middleware sees of one attempt (<see cref="IJobMiddleware"/>).</summary>
public sealed class JobExecutingContext
{
    internal JobExecutingContext(AcquiredJob job, IServiceProvider services, JobOutput output, ResourceUsage usage, CancellationToken cancellationToken)
    {
        Job = job;
        Services = services;
        Output = output;
        Usage = usage;
        CancellationToken = cancellationToken;
    }

    /// <summary>The job as acquired.</summary>
    public AcquiredJob Job { get; }

    /// <summary>The attempt's service scope: the one the handler is resolved from, so a scoped service set here (a tenant context) is the handler's.</summary>
    public IServiceProvider Services { get; }

    /// <summary>The attempt's output (progress, result), shared with the handler.</summary>
    public JobOutput Output { get; }

    /// <summary>What the run used, shared with the handler.</summary>
    public ResourceUsage Usage { get; }

    /// <summary>The attempt's token (cancellation, lost lease, timeout, shutdown).</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>State that middleware of one attempt share.</summary>
    public IDictionary<string, object?> Items { get; } = new Dictionary<string, object?>(StringComparer.Ordinal);
}

/// <summary>
/// Code around the execution of every job (logging scopes, tenant context, metrics, authorization):
/// middleware run in registration order, the first registered outermost, each deciding whether to call
/// <c>proceed</c>. Not calling it skips the rest and the handler (the attempt then succeeds unless the
/// middleware throws); throwing is a failure of the attempt like a handler's, and
/// <see cref="SnoozeJobException"/> or <see cref="PermanentJobFailureException"/> work the same.
/// Register with <see cref="SchedulingBuilder.UseMiddleware{TMiddleware}"/>; a job of a kind without a
/// handler fails before any middleware runs.
/// </summary>
public interface IJobMiddleware
{
    /// <summary>Runs around the rest of the pipeline.</summary>
    /// <param name="context">The attempt.</param>
    /// <param name="proceed">The rest: further middleware, then the handler.</param>
    Task InvokeAsync(JobExecutingContext context, Func<Task> proceed);
}

/// <summary>One registered middleware: how to run it in an attempt's scope.</summary>
internal sealed record JobMiddlewareRegistration(Func<JobExecutingContext, Func<Task>, Task> Invoke);
