namespace Scheduling;

/// <summary>
/// What enqueue middleware (<see cref="JobQueueOptions.EnqueueMiddleware"/>) sees of one enqueue call:
/// its requests, which it may replace (one for one, in order), and after <c>proceed</c> the results.
/// A middleware that does not call <c>proceed</c> short-circuits the call: it then sets
/// <see cref="Results"/> (one per request), or throws to refuse the call, and nothing is written.
/// </summary>
public sealed class EnqueueContext
{
    internal EnqueueContext(IReadOnlyList<JobRequest> requests, bool isBatch, CancellationToken cancellationToken)
    {
        Requests = requests;
        IsBatch = isBatch;
        CancellationToken = cancellationToken;
    }

    /// <summary>The requests of the call, validated after the middleware ran. A batch's are its members, then its callbacks (on-success first).</summary>
    public IReadOnlyList<JobRequest> Requests { get; set; }

    /// <summary>True for a batch's enqueue (<see cref="IJobQueue.EnqueueBatchAsync"/>), which cannot be short-circuited.</summary>
    public bool IsBatch { get; }

    /// <summary>Per request, what the call did: set by the queue once <c>proceed</c> returns, or by a middleware that short-circuits.</summary>
    public IReadOnlyList<EnqueueResult>? Results { get; set; }

    /// <summary>The caller's token.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>State that the middleware of one call share.</summary>
    public IDictionary<string, object?> Items { get; } = new Dictionary<string, object?>(StringComparer.Ordinal);
}

/// <summary>Middleware around every enqueue, resolved once from the host's services (<see cref="SchedulingBuilder.UseEnqueueMiddleware{TMiddleware}"/>).</summary>
public interface IEnqueueMiddleware
{
    /// <summary>Runs around the rest of the pipeline.</summary>
    /// <param name="context">The call.</param>
    /// <param name="proceed">The rest: further middleware, then the queue's write.</param>
    Task InvokeAsync(EnqueueContext context, Func<Task> proceed);
}
