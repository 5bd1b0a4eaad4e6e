using System.Text;
using System.Text.Json;

namespace Scheduling;

/// <summary>
/// What a running handler hands back (<see cref="JobContext{TPayload}.Output"/>): a result, stored
/// with the job when the attempt succeeds, that other code reads with <see cref="IJobQueue.GetJobAsync"/>
/// (<see cref="JobInfo.ResultJson"/>) and child jobs with <see cref="JobContext{TPayload}.ParentResultsAsync"/>.
/// </summary>
public sealed class JobOutput
{
    /// <summary>The largest result, in bytes of UTF-8 JSON.</summary>
    public const int MaxResultBytes = 64 * 1024;

    /// <summary>Creates an empty output (results serialised with the web defaults).</summary>
    public JobOutput() : this(null, null)
    {
    }

    internal JobOutput(JsonSerializerOptions? json, Func<CancellationToken, ValueTask<IReadOnlyList<JobInfo>>>? parents)
    {
        Json = json ?? PayloadSerializer.Default;
        Parents = parents;
    }

    internal JsonSerializerOptions Json { get; }

    internal Func<CancellationToken, ValueTask<IReadOnlyList<JobInfo>>>? Parents { get; }

    /// <summary>The longest progress message.</summary>
    public const int MaxProgressMessageLength = 200;

    /// <summary>The most metadata, in bytes of UTF-8 JSON (an object of string values).</summary>
    public const int MaxMetadataBytes = 4096;

    private readonly object _gate = new();
    private readonly SortedDictionary<string, string> _metadata = new(StringComparer.Ordinal);
    private double? _fraction;
    private string? _message;
    private int _version;

    /// <summary>
    /// Reports how far the job is (0 to 1) and what it is doing. Cheap and synchronous: the worker
    /// writes the latest report with its next heartbeat (no round trip per report); visible in
    /// <see cref="JobInfo.Progress"/>, the CLI and the dashboard.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is not between 0 and 1.</exception>
    /// <exception cref="ArgumentException">The message is longer than <see cref="MaxProgressMessageLength"/>.</exception>
    public void ReportProgress(double fraction, string? message = null)
    {
        if (!(fraction >= 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "Progress is a fraction between 0 and 1.");
        if (message is { Length: > MaxProgressMessageLength }) throw new ArgumentException($"A progress message is at most {MaxProgressMessageLength} characters (was {message.Length}).", nameof(message));
        lock (_gate)
        {
            _fraction = fraction;
            _message = message;
            _version++;
        }
    }

    /// <summary>Sets (or, with null, removes) one metadata entry, written like progress with the next heartbeat.</summary>
    /// <exception cref="ArgumentException">The key is empty, or the metadata would exceed <see cref="MaxMetadataBytes"/>.</exception>
    public void SetMetadata(string key, string? value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        lock (_gate)
        {
            var old = _metadata.TryGetValue(key, out var previous) ? previous : null;
            if (value is null) _metadata.Remove(key);
            else _metadata[key] = value;
            var bytes = Encoding.UTF8.GetByteCount(JsonSerializer.Serialize(_metadata, MetadataJsonContext.Default.SortedDictionaryStringString));
            if (bytes > MaxMetadataBytes)
            {
                if (old is null) _metadata.Remove(key);
                else _metadata[key] = old;
                throw new ArgumentException($"The job's metadata would be {bytes:N0} bytes of JSON; the limit is {MaxMetadataBytes:N0}.", nameof(value));
            }

            _version++;
        }
    }

    /// <summary>The latest report and its version, when it is newer than <paramref name="sentVersion"/>; for the worker's heartbeat.</summary>
    internal (JobProgress Progress, int Version)? Pending(int sentVersion)
    {
        lock (_gate)
        {
            if (_version == sentVersion) return null;
            return (new JobProgress(_fraction, _message, _metadata.Count == 0 ? null : JsonSerializer.Serialize(_metadata, MetadataJsonContext.Default.SortedDictionaryStringString)), _version);
        }
    }

    /// <summary>
    /// True once the handler completed the job inside its own transaction (a store's
    /// <c>CompleteWithinAsync</c>): the worker then writes no success of its own, only a failure that
    /// the store refuses if that transaction committed (so a rolled-back transaction retries the job).
    /// </summary>
    public bool CompletedInTransaction => Volatile.Read(ref _completedInTransaction);

    private bool _completedInTransaction;

    /// <summary>Called by a store once it has written the job's completion into the handler's transaction.</summary>
    public void MarkCompletedInTransaction() => Volatile.Write(ref _completedInTransaction, true);

    /// <summary>The result as stored (JSON), or null when the handler set none.</summary>
    public string? ResultJson { get; private set; }

    /// <summary>
    /// Sets the job's result, serialised now with the queue's payload serialiser options; stored only
    /// if the attempt succeeds (a later call replaces it).
    /// </summary>
    /// <exception cref="ArgumentException">The serialised result is larger than <see cref="MaxResultBytes"/>.</exception>
    public void SetResult<TResult>(TResult value)
    {
        var json = PayloadSerializer.Serialize(value, Json);
        var bytes = Encoding.UTF8.GetByteCount(json);
        if (bytes > MaxResultBytes)
            throw new ArgumentException($"The job's result is {bytes:N0} bytes of JSON; the limit is {MaxResultBytes:N0}. Store large outputs elsewhere and return a reference.", nameof(value));
        ResultJson = json;
    }
}

/// <summary>A parent job's outcome as a child reads it (<see cref="JobContext{TPayload}.ParentResultsAsync"/>).</summary>
/// <param name="JobId">The parent.</param>
/// <param name="Kind">Its kind.</param>
/// <param name="State">Its state (a child runs after its parents finish: succeeded, or failed with the run-anyway policy).</param>
/// <param name="ResultJson">The result it stored, if any.</param>
public sealed record JobResult(long JobId, string Kind, JobState State, string? ResultJson)
{
    /// <summary>The result deserialised to <typeparamref name="T"/> (default when there is none).</summary>
    public T? Value<T>(JsonSerializerOptions? options = null) =>
        ResultJson is null ? default : PayloadSerializer.Deserialize<T>(ResultJson, options ?? PayloadSerializer.Default);
}

/// <summary>What a running job last reported of itself (<see cref="JobOutput.ReportProgress"/>, <see cref="JobOutput.SetMetadata"/>).</summary>
/// <param name="Fraction">How far it is, 0 to 1; null when it reported metadata only.</param>
/// <param name="Message">What it is doing, if it said.</param>
/// <param name="MetadataJson">Its metadata as a JSON object of string values, if any.</param>
public sealed record JobProgress(double? Fraction, string? Message, string? MetadataJson)
{
    /// <summary>When the store wrote it (its clock); null before it was written.</summary>
    public DateTimeOffset? ReportedAt { get; init; }
}

/// <summary>A running job's latest progress, sent with a heartbeat under its lease.</summary>
/// <param name="Lease">The lease it runs under (a stale one writes nothing).</param>
/// <param name="Progress">The report.</param>
public readonly record struct JobProgressUpdate(JobLease Lease, JobProgress Progress);
