using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;

namespace Scheduling;

/// <summary>Runs jobs of one kind whose payload deserialises to <typeparamref name="TPayload"/>.</summary>
/// <typeparam name="TPayload">The payload type.</typeparam>
public interface IJobHandler<TPayload>
{
    /// <summary>Runs one attempt. Throwing fails the attempt (retried per policy); <see cref="PermanentJobFailureException"/> makes it dead at once.</summary>
    /// <param name="context">The job and its payload.</param>
    /// <param name="cancellationToken">Cancelled when the job is cancelled, its lease is lost, or shutdown runs out of time.</param>
    Task HandleAsync(JobContext<TPayload> context, CancellationToken cancellationToken);
}

/// <summary>What a handler gets: the job as acquired and its typed payload.</summary>
/// <typeparam name="TPayload">The payload type.</typeparam>
/// <param name="Job">The job as acquired (id, queue, kind, attempt, ...).</param>
/// <param name="Payload">The deserialised payload (default when the job has none).</param>
public sealed record JobContext<TPayload>(AcquiredJob Job, TPayload Payload)
{
    /// <summary>
    /// Where the handler reports what the run used (peak memory and CPU, exit code, OOM kill); for
    /// jobs with a definition it feeds the run history that sizes later runs of the same command.
    /// </summary>
    public ResourceUsage Usage { get; init; } = new();

    /// <summary>Where the handler sets its result (<see cref="JobOutput.SetResult{TResult}"/>), stored with the job when the attempt succeeds.</summary>
    public JobOutput Output { get; init; } = new();

    /// <summary>Reports how far the job is and what it is doing (<see cref="JobOutput.ReportProgress"/>): written with the next heartbeat.</summary>
    public void ReportProgress(double fraction, string? message = null) => Output.ReportProgress(fraction, message);

    /// <summary>Sets the job's result (<see cref="JobOutput.SetResult{TResult}"/>): at most <see cref="JobOutput.MaxResultBytes"/> of JSON, stored if the attempt succeeds.</summary>
    public void SetResult<TResult>(TResult value) => Output.SetResult(value);

    /// <summary>
    /// The results of this job's parents (<see cref="JobRequest.DependsOn"/>), by parent id, so a graph
    /// passes data along without a side table. Read from the store when called.
    /// </summary>
    /// <exception cref="InvalidOperationException">The context was made outside a worker, with no store to read from.</exception>
    public async ValueTask<IReadOnlyList<JobResult>> ParentResultsAsync(CancellationToken cancellationToken = default)
    {
        var read = Output.Parents ?? throw new InvalidOperationException("This job context has no store to read parent results from (it was not made by a worker).");
        var parents = await read(cancellationToken).ConfigureAwait(false);
        return parents.OrderBy(p => p.Id).Select(p => new JobResult(p.Id, p.Kind, p.State, p.ResultJson)).ToArray();
    }
}

/// <summary>
/// Thrown by a handler to run the job again after <see cref="Delay"/> without counting a failure: the
/// attempt is given back and no error is kept (a rate-limited API, a resource not ready yet). Up to
/// <see cref="JobTransitions.MaxSnoozes"/> snoozes per job; beyond that a snooze counts as a failed attempt.
/// </summary>
public sealed class SnoozeJobException : Exception
{
    /// <summary>The longest snooze.</summary>
    public static readonly TimeSpan MaxDelay = TimeSpan.FromDays(365);

    /// <summary>Snoozes the job for <paramref name="delay"/> (zero to <see cref="MaxDelay"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The delay is negative or longer than <see cref="MaxDelay"/>.</exception>
    public SnoozeJobException(TimeSpan delay)
        : base($"The handler snoozed the job for {delay}.")
    {
        if (delay < TimeSpan.Zero || delay > MaxDelay) throw new ArgumentOutOfRangeException(nameof(delay), delay, $"A snooze lasts from zero to {MaxDelay.TotalDays:0} days (was {delay}).");
        Delay = delay;
    }

    /// <summary>Snoozes the job for <paramref name="delay"/> and gives it <paramref name="priority"/> from then on (-32768 to 32767).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The delay or the priority is out of range.</exception>
    public SnoozeJobException(TimeSpan delay, int priority)
        : this(delay)
    {
        if (priority is < short.MinValue or > short.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(priority), priority, "A priority is between -32768 and 32767.");
        Priority = priority;
    }

    /// <summary>Snoozes the job for one second.</summary>
    public SnoozeJobException() : this(TimeSpan.FromSeconds(1)) { }

    /// <summary>Snoozes the job for one second (the message is ignored; for the exception pattern).</summary>
    public SnoozeJobException(string message, Exception innerException) : base(message, innerException) => Delay = TimeSpan.FromSeconds(1);

    /// <summary>Snoozes the job for one second (the message is ignored; for the exception pattern).</summary>
    public SnoozeJobException(string message) : base(message) => Delay = TimeSpan.FromSeconds(1);

    /// <summary>How long until the job is due again.</summary>
    public TimeSpan Delay { get; }

    /// <summary>The job's new priority; null: it keeps its own.</summary>
    public int? Priority { get; }
}

/// <summary>Thrown by a handler when retrying cannot help; the job goes straight to dead.</summary>
public sealed class PermanentJobFailureException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PermanentJobFailureException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public PermanentJobFailureException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception with a default message.</summary>
    public PermanentJobFailureException() : base("The job failed permanently.") { }
}

/// <summary>One registered kind: how to run a job of it, in the attempt's service scope (which the executor creates).</summary>
internal sealed record JobHandlerRegistration(string Kind, Func<IServiceProvider, AcquiredJob, JsonSerializerOptions, ResourceUsage, JobOutput, CancellationToken, Task> Invoke);

/// <summary>The handlers by kind, built from the registrations made through the builder.</summary>
internal sealed class JobHandlerRegistry
{
    private readonly Dictionary<string, JobHandlerRegistration> _byKind = new(StringComparer.Ordinal);

    public JobHandlerRegistry(IEnumerable<JobHandlerRegistration> registrations)
    {
        foreach (var registration in registrations) _byKind[registration.Kind] = registration; // the last registration of a kind wins
    }

    public bool TryGet(string kind, out JobHandlerRegistration registration) => _byKind.TryGetValue(kind, out registration!);

    public IEnumerable<string> Kinds => _byKind.Keys;

    internal static TPayload Deserialize<TPayload>(AcquiredJob job, JsonSerializerOptions json, bool required)
    {
        TPayload? payload;
        try
        {
            payload = job.PayloadJson is null ? default : PayloadSerializer.Deserialize<TPayload>(job.PayloadJson, json);
        }
        catch (JsonException ex)
        {
            throw new PermanentJobFailureException($"The payload of job {job.Id} ('{job.Kind}') does not deserialise to {typeof(TPayload).Name}: {ex.Message}", ex);
        }

        if (required && (payload is null || job.PayloadJson is null))
            throw new PermanentJobFailureException($"Job {job.Id} ('{job.Kind}') has no payload, but its handler takes a non-nullable {typeof(TPayload).Name}; enqueue it with one, or declare the handler's payload nullable.");
        return payload!;
    }

    /// <summary>
    /// Whether a handler taking <c>JobContext&lt;TPayload&gt;</c> through <paramref name="parameter"/> needs a
    /// payload: a reference type its code declares non-nullable (read from its nullable annotations; code
    /// without them takes null, as before). A value type without a payload gets its default, as ever.
    /// </summary>
    internal static bool RequiresPayload<TPayload>(System.Reflection.ParameterInfo? parameter)
    {
        if (typeof(TPayload).IsValueType || parameter is null) return false;
        var context = new System.Reflection.NullabilityInfoContext().Create(parameter);
        return context.GenericTypeArguments is [{ ReadState: System.Reflection.NullabilityState.NotNull }];
    }

    /// <summary>What a handler type keeps when trimmed: its constructors (the container makes it) and its public methods (its <c>HandleAsync</c>'s nullable annotations are read).</summary>
    internal const DynamicallyAccessedMemberTypes HandlerMembers = DynamicallyAccessedMemberTypes.PublicConstructors | DynamicallyAccessedMemberTypes.PublicMethods;

    internal static JobHandlerRegistration ForType<[DynamicallyAccessedMembers(HandlerMembers)] THandler, TPayload>(string kind)
        where THandler : class, IJobHandler<TPayload> =>
        ForTypeWith<THandler, TPayload>(kind, RequiresPayload<TPayload>(typeof(THandler).GetMethod(nameof(IJobHandler<TPayload>.HandleAsync), [typeof(JobContext<TPayload>), typeof(CancellationToken)])?.GetParameters()[0]));

    private static JobHandlerRegistration ForTypeWith<THandler, TPayload>(string kind, bool required)
        where THandler : class, IJobHandler<TPayload> =>
        new(kind, async (services, job, json, usage, output, ct) =>
        {
            var payload = Deserialize<TPayload>(job, json, required);
            var handler = services.GetRequiredService<THandler>(); // the attempt's scope (JobExecutor)
            await handler.HandleAsync(new JobContext<TPayload>(job, payload) { Usage = usage, Output = output }, ct).ConfigureAwait(false);
        });

    internal static JobHandlerRegistration ForDelegate<TPayload>(string kind, Func<JobContext<TPayload>, CancellationToken, Task> handler)
    {
        var required = RequiresPayload<TPayload>(handler.Method.GetParameters().FirstOrDefault());
        return new(kind, async (_, job, json, usage, output, ct) =>
        {
            var payload = Deserialize<TPayload>(job, json, required);
            await handler(new JobContext<TPayload>(job, payload) { Usage = usage, Output = output }, ct).ConfigureAwait(false);
        });
    }
}
