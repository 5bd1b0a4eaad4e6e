namespace Scheduling.Internal;

/// <summary>
/// Runs a queue's enqueue middleware (<see cref="JobQueueOptions.EnqueueMiddleware"/>) around one
/// enqueue call: the one place both queues do it, for plain calls and for batches.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static class EnqueuePipeline
{
    /// <summary>Runs the middleware around <paramref name="write"/>, which writes the (possibly replaced) requests.</summary>
    public static async ValueTask<IReadOnlyList<EnqueueResult>> RunAsync(IReadOnlyList<JobRequest> requests, JobQueueOptions options,
        Func<IReadOnlyList<JobRequest>, ValueTask<IReadOnlyList<EnqueueResult>>> write, CancellationToken cancellationToken)
    {
        var middleware = options.EnqueueMiddleware;
        if (middleware.Count == 0 || requests is null || requests.Contains(null!)) return await write(requests!).ConfigureAwait(false); // the write validates
        var context = await RunAsync(requests, isBatch: false, middleware, write, cancellationToken).ConfigureAwait(false);
        if (context.Results is not { } results)
            throw new InvalidOperationException("An enqueue middleware neither called proceed nor set EnqueueContext.Results: nothing was enqueued, and the caller needs a result per request (throw to refuse an enqueue).");
        if (results.Count != requests.Count)
            throw new InvalidOperationException($"An enqueue middleware set {results.Count} result(s) for {requests.Count} request(s); give one per request.");
        return results;
    }

    /// <summary>
    /// Runs the middleware around a batch's enqueue: they see its members, then its callbacks, and
    /// <paramref name="write"/> gets the batch rebuilt from what they left. A batch cannot be short-circuited.
    /// </summary>
    public static async ValueTask<BatchResult> RunBatchAsync(BatchRequest batch, JobQueueOptions options, Func<BatchRequest, ValueTask<BatchResult>> write, CancellationToken cancellationToken)
    {
        var middleware = options.EnqueueMiddleware;
        if (middleware.Count == 0 || batch?.Jobs is null) return await write(batch!).ConfigureAwait(false); // the write validates
        var requests = batch.Jobs.Concat(new[] { batch.OnSuccess, batch.OnComplete }.OfType<JobRequest>()).ToArray();
        BatchResult? result = null;
        await RunAsync(requests, isBatch: true, middleware, async changed =>
        {
            var members = batch.Jobs.Count;
            var next = members;
            var rebuilt = batch with
            {
                Jobs = changed.Take(members).ToArray(),
                OnSuccess = batch.OnSuccess is null ? null : changed[next++],
                OnComplete = batch.OnComplete is null ? null : changed[next],
            };
            result = await write(rebuilt).ConfigureAwait(false);
            return [.. result.Jobs, .. new[] { result.OnSuccessJobId, result.OnCompleteJobId }.OfType<long>().Select(id => new EnqueueResult(id, true))];
        }, cancellationToken).ConfigureAwait(false);
        return result ?? throw new InvalidOperationException("An enqueue middleware did not call proceed for a batch: a batch cannot be short-circuited (throw to refuse it).");
    }

    private static async Task<EnqueueContext> RunAsync(IReadOnlyList<JobRequest> requests, bool isBatch, IList<Func<EnqueueContext, Func<Task>, Task>> middleware,
        Func<IReadOnlyList<JobRequest>, ValueTask<IReadOnlyList<EnqueueResult>>> write, CancellationToken cancellationToken)
    {
        var context = new EnqueueContext(requests, isBatch, cancellationToken);
        async Task WriteAsync()
        {
            if (context.Requests is not { } changed || changed.Count != requests.Count)
                throw new InvalidOperationException($"An enqueue middleware left {context.Requests?.Count ?? 0} request(s) of the {requests.Count} given; it may replace requests one for one, not add or drop them.");
            context.Results = await write(changed).ConfigureAwait(false);
        }

        Task Step(int i) => i == middleware.Count ? WriteAsync() : middleware[i](context, () => Step(i + 1));
        await Step(0).ConfigureAwait(false);
        return context;
    }
}
