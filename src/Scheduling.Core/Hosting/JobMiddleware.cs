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

/// <summary>One registered payload upgrade step: <see cref="FromVersion"/> to the next.</summary>
internal sealed record PayloadUpgradeRegistration(string Kind, int FromVersion, Func<System.Text.Json.Nodes.JsonNode?, System.Text.Json.Nodes.JsonNode?> Upgrade);

/// <summary>The payload upgrade steps by kind, and the one place that applies them.</summary>
internal sealed class PayloadUpgrades
{
    private readonly Dictionary<string, SortedDictionary<int, Func<System.Text.Json.Nodes.JsonNode?, System.Text.Json.Nodes.JsonNode?>>> _byKind = new(StringComparer.Ordinal);

    public PayloadUpgrades(IEnumerable<PayloadUpgradeRegistration> registrations)
    {
        foreach (var step in registrations)
        {
            if (!_byKind.TryGetValue(step.Kind, out var steps)) _byKind[step.Kind] = steps = [];
            steps[step.FromVersion] = step.Upgrade; // the last registration of a step wins
        }
    }

    /// <summary>
    /// <paramref name="job"/> with its payload upgraded to the newest version its kind's steps reach;
    /// the job itself for a kind without steps, or a payload already there.
    /// </summary>
    /// <exception cref="PermanentJobFailureException">No step leads on from the job's version.</exception>
    /// <exception cref="InvalidOperationException">The job's version is newer than this host knows (retried).</exception>
    public AcquiredJob Upgrade(AcquiredJob job)
    {
        if (!_byKind.TryGetValue(job.Kind, out var steps)) return job;
        var newest = steps.Keys.Max() + 1;
        if (job.PayloadVersion == newest) return job;
        if (job.PayloadVersion > newest)
            throw new InvalidOperationException($"Job {job.Id} ('{job.Kind}') has payload version {job.PayloadVersion}; this host's handler reads up to version {newest}. Deploy the newer handler; the job is retried meanwhile.");
        var node = job.PayloadJson is null ? null : System.Text.Json.Nodes.JsonNode.Parse(job.PayloadJson);
        for (var version = job.PayloadVersion; version < newest; version++)
        {
            if (!steps.TryGetValue(version, out var step))
                throw new PermanentJobFailureException($"Job {job.Id} ('{job.Kind}') has payload version {job.PayloadVersion}, and no upgrade from version {version} is registered (AddPayloadUpgrade).");
            node = step(node);
        }

        return job with { PayloadJson = node?.ToJsonString(), PayloadVersion = newest };
    }
}
