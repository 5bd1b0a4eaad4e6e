using Scheduling.Internal;
using System.Text;
using System.Text.Json;

namespace Scheduling.Testing;

/// <summary>Thrown by the enqueued-job assertions; its message lists what was enqueued.</summary>
public sealed class JobAssertionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public JobAssertionException(string message) : base(message) { }

    /// <summary>Creates the exception with a default message.</summary>
    public JobAssertionException() : base("A job assertion failed.") { }

    /// <summary>Creates the exception with its cause.</summary>
    public JobAssertionException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// Assertions on the jobs waiting in any <see cref="IJobQueue"/> (the in-memory queue or PostgreSQL):
/// a job is <em>enqueued</em> while it has not started — waiting for parents, due, or scheduled for later.
/// They throw <see cref="JobAssertionException"/>, which every test framework reports as a failure.
/// </summary>
public static class EnqueuedJobAssertions
{
    private static readonly JobState[] NotStarted = [JobState.Waiting, JobState.Available, JobState.Scheduled];
    private const int ListedInMessages = 20;

    /// <summary>Every job enqueued and not started yet (of <paramref name="kind"/>, when given), oldest first.</summary>
    public static async Task<IReadOnlyList<JobInfo>> EnqueuedJobsAsync(this IJobQueue queue, string? kind = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        var jobs = new List<JobInfo>();
        long? before = null;
        while (true)
        {
            var page = await queue.ListJobsAsync(new JobListQuery { Kind = kind, States = NotStarted, BeforeId = before, Limit = JobListQuery.MaxLimit }, cancellationToken).ConfigureAwait(false);
            jobs.AddRange(page);
            if (page.Count < JobListQuery.MaxLimit) break;
            before = page[^1].Id;
        }

        jobs.Reverse();
        return jobs;
    }

    /// <summary>
    /// Asserts that at least one job of <paramref name="kind"/> matching <paramref name="where"/> is enqueued
    /// (exactly <paramref name="count"/>, when given), and returns the matches, oldest first.
    /// </summary>
    public static async Task<IReadOnlyList<JobInfo>> AssertEnqueuedAsync(this IJobQueue queue, string kind, Func<JobInfo, bool>? where = null, int? count = null, CancellationToken cancellationToken = default)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must not be negative.");
        var (all, matches, condition) = await MatchAsync(queue, kind, where, cancellationToken).ConfigureAwait(false);
        if (count is { } expected && matches.Length != expected) throw Failure($"Expected {expected} job(s) of kind '{kind}'{condition} to be enqueued, found {matches.Length}.", all);
        if (count is null && matches.Length == 0) throw Failure($"Expected a job of kind '{kind}'{condition} to be enqueued, found none.", all);
        return matches;
    }

    /// <summary>
    /// Asserts that a job of <paramref name="kind"/> whose payload, read as <typeparamref name="TPayload"/>
    /// (with <paramref name="json"/>, else the web defaults the queue writes with), matches
    /// <paramref name="payload"/> is enqueued (exactly <paramref name="count"/>, when given); returns the matches.
    /// </summary>
    public static Task<IReadOnlyList<JobInfo>> AssertEnqueuedAsync<TPayload>(this IJobQueue queue, string kind, Func<TPayload, bool> payload, int? count = null, JsonSerializerOptions? json = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return queue.AssertEnqueuedAsync(kind, job => PayloadMatches(job, payload, json), count, cancellationToken);
    }

    /// <summary>Asserts that no job of <paramref name="kind"/> matching <paramref name="where"/> is enqueued.</summary>
    public static async Task AssertNotEnqueuedAsync(this IJobQueue queue, string kind, Func<JobInfo, bool>? where = null, CancellationToken cancellationToken = default)
    {
        var (all, matches, condition) = await MatchAsync(queue, kind, where, cancellationToken).ConfigureAwait(false);
        if (matches.Length > 0) throw Failure($"Expected no job of kind '{kind}'{condition} to be enqueued, found {matches.Length}.", all);
    }

    /// <summary>Asserts that no job whose payload, read as <typeparamref name="TPayload"/>, matches <paramref name="payload"/> is enqueued.</summary>
    public static Task AssertNotEnqueuedAsync<TPayload>(this IJobQueue queue, string kind, Func<TPayload, bool> payload, JsonSerializerOptions? json = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return queue.AssertNotEnqueuedAsync(kind, job => PayloadMatches(job, payload, json), cancellationToken);
    }

    /// <summary>A job's payload read as <typeparamref name="TPayload"/> (default when it has none).</summary>
    /// <exception cref="JobAssertionException">The payload does not read as <typeparamref name="TPayload"/>.</exception>
    public static TPayload? Payload<TPayload>(this JobInfo job, JsonSerializerOptions? json = null)
    {
        ArgumentNullException.ThrowIfNull(job);
        try
        {
            return job.PayloadJson is null ? default : PayloadSerializer.Deserialize<TPayload>(job.PayloadJson, json ?? PayloadSerializer.Default);
        }
        catch (JsonException ex)
        {
            throw new JobAssertionException($"The payload of job {job.Id} ('{job.Kind}') does not read as {typeof(TPayload).Name}: {ex.Message} Payload: {job.PayloadJson}", ex);
        }
    }

    /// <summary>What is enqueued, the jobs of <paramref name="kind"/> matching <paramref name="where"/>, and how messages name the condition.</summary>
    private static async Task<(IReadOnlyList<JobInfo> All, JobInfo[] Matches, string Condition)> MatchAsync(IJobQueue queue, string kind, Func<JobInfo, bool>? where, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(kind);
        var all = await queue.EnqueuedJobsAsync(null, cancellationToken).ConfigureAwait(false);
        return (all, all.Where(j => j.Kind == kind && (where?.Invoke(j) ?? true)).ToArray(), where is null ? "" : " matching the condition");
    }

    private static bool PayloadMatches<TPayload>(JobInfo job, Func<TPayload, bool> payload, JsonSerializerOptions? json) =>
        job.Payload<TPayload>(json) is { } value && payload(value);

    private static JobAssertionException Failure(string headline, IReadOnlyList<JobInfo> enqueued)
    {
        var text = new StringBuilder(headline);
        if (enqueued.Count == 0) return new JobAssertionException(text.Append(" Nothing is enqueued.").ToString());
        text.Append(" Enqueued (").Append(enqueued.Count).Append("):");
        foreach (var job in enqueued.Take(ListedInMessages))
            text.Append("\n  #").Append(job.Id).Append(' ').Append(job.Kind).Append(" in '").Append(job.Queue).Append("' (").Append(job.State.ToString().ToLowerInvariant()).Append(") ").Append(job.PayloadJson ?? "(no payload)");
        if (enqueued.Count > ListedInMessages) text.Append("\n  … and ").Append(enqueued.Count - ListedInMessages).Append(" more");
        return new JobAssertionException(text.ToString());
    }
}
