using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Scheduling.Internal;

/// <summary>
/// Runs one attempt of a job with the handler registered for its kind and says how it ended as the
/// acknowledgement a worker writes: the one home of "handler outcome → acknowledgement", shared by
/// the worker host and Scheduling.Testing's runner, so a test runs a job exactly as a worker would.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public sealed class JobExecutor
{
    private readonly JobHandlerRegistry _handlers;
    private readonly IServiceProvider _services;
    private readonly TimeProvider _time;
    private readonly JobMiddlewareRegistration[] _middleware;
    private readonly PayloadUpgrades _upgrades;

    internal JobExecutor(JobHandlerRegistry handlers, IServiceProvider services, IOptions<SchedulingOptions> options, TimeProvider time, IEnumerable<JobMiddlewareRegistration>? middleware = null, PayloadUpgrades? upgrades = null)
    {
        _upgrades = upgrades ?? new PayloadUpgrades([]);
        _middleware = middleware?.ToArray() ?? [];
        _handlers = handlers;
        _services = services;
        _time = time;
        PayloadJson = PayloadSerializerOptions(options.Value.Queue);
    }

    /// <summary>How payloads are (de)serialised: <see cref="JobQueueOptions.UseJsonSerializerOptions"/>, else the web defaults.</summary>
    public JsonSerializerOptions PayloadJson { get; }

    /// <summary>The kinds with a registered handler, in ordinal order.</summary>
    public IReadOnlyList<string> Kinds => _handlers.Kinds.Order(StringComparer.Ordinal).ToArray();

    /// <summary>The payload serialiser options <paramref name="rules"/> give (the web defaults unless set).</summary>
    internal static JsonSerializerOptions PayloadSerializerOptions(JobQueueOptions rules) => rules.JsonSerializerOptions() ?? PayloadSerializer.Default;

    /// <summary>
    /// Runs the handler of <paramref name="job"/>'s kind once, with <paramref name="usage"/> for it to
    /// report into. A handler that throws fails the attempt (retryable unless it threw
    /// <see cref="PermanentJobFailureException"/>); a kind without a handler fails it with a message
    /// naming the registered kinds. An <see cref="OperationCanceledException"/> after
    /// <paramref name="cancellationToken"/> was cancelled is rethrown: why it was cancelled decides the acknowledgement.
    /// </summary>
    /// <param name="job">The job.</param>
    /// <param name="usage">Where the handler reports what it used.</param>
    /// <param name="workerId">The worker, for messages.</param>
    /// <param name="cancellationToken">Stops the handler.</param>
    /// <param name="output">Where the handler reports progress and its result (<see cref="CreateOutput"/>); a new one when null.</param>
    public async Task<JobExecution> RunAsync(AcquiredJob job, ResourceUsage usage, string workerId, CancellationToken cancellationToken, JobOutput? output = null)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(usage);
        var started = _time.GetTimestamp();
        if (!_handlers.TryGet(job.Kind, out var registration))
        {
            var known = string.Join(", ", Kinds);
            var unknown = JobAck.Failure(job.Lease, $"No handler is registered for job kind '{job.Kind}' on worker {workerId}. Registered kinds: {(known.Length == 0 ? "(none)" : known)}.");
            return new JobExecution(WithUsage(job, unknown, usage, TimeSpan.Zero), null, UnknownKind: true);
        }

        JobAck ack;
        Exception? failure = null;
        try
        {
            output ??= CreateOutput(job);
            // One scope per attempt, shared by the middleware and the handler; the middleware wrap it, first registered outermost.
            var scope = _services.CreateAsyncScope();
            await using (scope.ConfigureAwait(false))
            {
                var attempt = output;
                Func<Task> next = () => registration.Invoke(scope.ServiceProvider, _upgrades.Upgrade(job), PayloadJson, usage, attempt, cancellationToken);
                if (_middleware.Length > 0)
                {
                    var context = new JobExecutingContext(job, scope.ServiceProvider, output, usage, cancellationToken);
                    for (var i = _middleware.Length - 1; i >= 0; i--)
                    {
                        var (middleware, inner) = (_middleware[i], next);
                        next = () => middleware.Invoke(context, inner);
                    }
                }

                await next().ConfigureAwait(false);
            }

            ack = output.CompletedInTransaction
                ? JobAck.Failure(job.Lease, CompletedInTransactionNotCommitted) with { CompletedInTransaction = true } // refused if it committed
                : JobAck.Success(job.Lease) with { ResultJson = output.ResultJson };
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (SnoozeJobException snooze)
        {
            ack = JobAck.Snooze(job, snooze.Delay, snooze.Priority); // not a failure: nothing to log or keep
        }
        catch (PermanentJobFailureException ex)
        {
            (failure, ack) = (ex, JobAck.Failure(job.Lease, ex.ToString(), retryable: false));
        }
        catch (Exception ex)
        {
            (failure, ack) = (ex, JobAck.Failure(job.Lease, ex.ToString()));
        }

        return new JobExecution(WithUsage(job, ack, usage, _time.GetElapsedTime(started)), failure, UnknownKind: false);
    }

    /// <summary>
    /// The error of a job whose handler completed it inside its own transaction and returned, when that
    /// transaction did not commit: the acknowledgement carrying it is refused when it did.
    /// </summary>
    public const string CompletedInTransactionNotCommitted = "The handler completed the job inside its own transaction, but that transaction did not commit; the attempt fails and the job is retried.";

    /// <summary>The output a handler of <paramref name="job"/> reports into: results serialised like payloads, parents read from the host's queue.</summary>
    public JobOutput CreateOutput(AcquiredJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        var queue = _services.GetService(typeof(IJobQueue)) as IJobQueue;
        return new JobOutput(PayloadJson, queue is null ? null : ct => queue.ListJobsAsync(new JobListQuery { ParentsOf = job.Id, Limit = JobGraph.MaxParents }, ct));
    }

    /// <summary>
    /// <paramref name="ack"/> with what the run used and how long it took, for jobs with an allocation
    /// (their run history learns from it); the exit code defaults to 0 on success and 1 otherwise.
    /// </summary>
    public static JobAck WithUsage(AcquiredJob job, JobAck ack, ResourceUsage usage, TimeSpan elapsed)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(usage);
        if (job.Allocation is null) return ack;
        usage.ExitCode ??= ack.Kind == JobAckKind.Succeeded ? 0 : 1;
        return ack with { Usage = usage, RunDuration = elapsed };
    }
}

/// <summary>How one attempt ended.</summary>
/// <param name="Ack">The acknowledgement to write.</param>
/// <param name="Exception">What the handler threw, if it threw.</param>
/// <param name="UnknownKind">True when no handler is registered for the job's kind.</param>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public sealed record JobExecution(JobAck Ack, Exception? Exception, bool UnknownKind);
