using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Scheduling.Internal;

namespace Scheduling.Testing;

/// <summary>One attempt the runner ran.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Kind">Its kind.</param>
/// <param name="Attempt">The attempt (1 for the first).</param>
/// <param name="State">The job's state after it: <see cref="JobState.Succeeded"/>, <see cref="JobState.Dead"/>, <see cref="JobState.Cancelled"/>, or available or scheduled again (a retry).</param>
/// <param name="Exception">What the handler threw, if it threw.</param>
public sealed record TestJobRun(long JobId, string Kind, int Attempt, JobState State, Exception? Exception);

/// <summary>What one <see cref="TestJobRunner.RunPendingAsync"/> did, attempt by attempt, in the order they ran.</summary>
/// <param name="Runs">Every attempt.</param>
public sealed record TestRunSummary(IReadOnlyList<TestJobRun> Runs)
{
    /// <summary>Attempts that succeeded.</summary>
    public int Succeeded => Runs.Count(r => r.State == JobState.Succeeded);

    /// <summary>Attempts that failed and left the job to be retried.</summary>
    public int Retried => Runs.Count(r => r.Exception is not null && r.State is JobState.Available or JobState.Scheduled);

    /// <summary>Attempts after which the job was dead.</summary>
    public int Dead => Runs.Count(r => r.State == JobState.Dead);

    /// <summary>What the handlers threw, in order.</summary>
    public IReadOnlyList<Exception> Failures => Runs.Where(r => r.Exception is not null).Select(r => r.Exception!).ToArray();
}

/// <summary>How <see cref="TestJobRunner.RunPendingAsync"/> runs.</summary>
public sealed record TestRunOptions
{
    /// <summary>Only this queue (default: every queue with due jobs).</summary>
    public string? Queue { get; init; }

    /// <summary>
    /// Retries in backoff and snoozed jobs run at once: the fake clock is moved to their due time (default true).
    /// Needs the queue's clock to be a <see cref="FakeTimeProvider"/> (<see cref="TestingServiceCollectionExtensions.UseTesting"/> sees to it).
    /// </summary>
    public bool SkipBackoff { get; init; } = true;

    /// <summary>Jobs enqueued for a later time run too, the clock moved to each one's time (default false).</summary>
    public bool IncludeScheduled { get; init; }

    /// <summary>A bound on the attempts one call runs, against a handler that enqueues itself forever (default 10,000).</summary>
    public int MaxAttempts { get; init; } = 10_000;
}

/// <summary>
/// Runs what is pending, on request, exactly as a worker would (the same handler registrations,
/// payload reading, failure rules and acknowledgements), one attempt at a time in queue order, until
/// nothing is due: children run once their parents finished, and retries run at once when the clock
/// is fake. Registered by <see cref="TestingServiceCollectionExtensions.UseTesting"/>; works with the
/// in-memory queue and with PostgreSQL (skipping backoff there needs the queue on the fake clock:
/// <c>UseDatabaseClock = false</c>).
/// </summary>
public sealed class TestJobRunner : IDisposable
{
    private const string WorkerId = "scheduling-testing";
    private static readonly TimeSpan LeaseDuration = TimeSpan.FromHours(1);

    private readonly IJobQueue _queue;
    private readonly IJobWorkerStore _store;
    private readonly JobExecutor _executor;
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly AsyncLocal<bool> _insideRun = new();

    /// <summary>Creates the runner over a queue, its worker side, the host's handlers and its clock.</summary>
    public TestJobRunner(IJobQueue queue, IJobWorkerStore store, JobExecutor executor, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(executor);
        ArgumentNullException.ThrowIfNull(time);
        _queue = queue;
        _store = store;
        _executor = executor;
        Clock = time as FakeTimeProvider;
    }

    /// <summary>The fake clock the runner moves to skip backoff, or null when the host's clock is not fake.</summary>
    public FakeTimeProvider? Clock { get; }

    /// <summary>True while a handler called by this runner is running (inline mode does not nest runs).</summary>
    internal bool InsideRun => _insideRun.Value;

    /// <summary>Runs every due job (and, per <paramref name="options"/>, retries and later jobs) until none is left; returns each attempt.</summary>
    /// <exception cref="InvalidOperationException">More than <see cref="TestRunOptions.MaxAttempts"/> attempts were needed.</exception>
    public async Task<TestRunSummary> RunPendingAsync(TestRunOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new TestRunOptions();
        if (InsideRun) throw new InvalidOperationException("RunPendingAsync was called from a handler it is running; the run already going picks up what that handler enqueues.");
        var runs = new List<TestJobRun>();
        await _oneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _insideRun.Value = true;
            while (true)
            {
                var due = await _queue.ListJobsAsync(new JobListQuery { Queue = options.Queue, States = [JobState.Available], Limit = JobListQuery.MaxLimit }, cancellationToken).ConfigureAwait(false);
                if (due.Count == 0)
                {
                    if (!await MoveClockToNextAsync(options, cancellationToken).ConfigureAwait(false)) break;
                    continue;
                }

                foreach (var queue in due.Select(j => j.Queue).Distinct(StringComparer.Ordinal))
                {
                    while ((await _store.AcquireAsync(new AcquireRequest(queue, WorkerId, 1, LeaseDuration), cancellationToken).ConfigureAwait(false)) is [var job])
                    {
                        if (runs.Count >= options.MaxAttempts)
                            throw new InvalidOperationException($"RunPendingAsync ran {options.MaxAttempts} attempts and jobs are still due (a handler that enqueues itself?); raise TestRunOptions.MaxAttempts if that is expected.");
                        runs.Add(await RunOneAsync(job, cancellationToken).ConfigureAwait(false));
                    }
                }
            }
        }
        finally
        {
            _insideRun.Value = false;
            _oneAtATime.Release();
        }

        return new TestRunSummary(runs);
    }

    /// <inheritdoc />
    public void Dispose() => _oneAtATime.Dispose();

    private async Task<TestJobRun> RunOneAsync(AcquiredJob job, CancellationToken cancellationToken)
    {
        var execution = await _executor.RunAsync(job, new ResourceUsage(), WorkerId, cancellationToken).ConfigureAwait(false);
        var result = (await _store.AcknowledgeAsync([execution.Ack], cancellationToken).ConfigureAwait(false))[0];
        if (!result.Applied) throw new InvalidOperationException($"The acknowledgement of job {job.Id} was refused: its lease was lost (did something else take or change the job while the test ran it?).");
        return new TestJobRun(job.Id, job.Kind, job.Attempt, result.State ?? JobState.Running, execution.Exception);
    }

    /// <summary>Moves the fake clock to the next job the options let run; false when there is none (or no fake clock).</summary>
    private async Task<bool> MoveClockToNextAsync(TestRunOptions options, CancellationToken cancellationToken)
    {
        if (Clock is null || !(options.SkipBackoff || options.IncludeScheduled)) return false;
        var scheduled = await _queue.ListJobsAsync(new JobListQuery { Queue = options.Queue, States = [JobState.Scheduled], Limit = JobListQuery.MaxLimit }, cancellationToken).ConfigureAwait(false);
        // A retry's backoff and a snooze are skipped; a job enqueued for later waits unless asked.
        var next = scheduled.Where(j => j.Attempt > 0 || j.Snoozes > 0 ? options.SkipBackoff : options.IncludeScheduled).Select(j => (DateTimeOffset?)j.RunAt).Min();
        if (next is not { } at) return false;
        var now = Clock.GetUtcNow();
        if (at <= now) return false; // due by this clock yet not listed as due: the store keeps another clock (PostgreSQL's own)
        Clock.SetUtcNow(at);
        return true;
    }
}
