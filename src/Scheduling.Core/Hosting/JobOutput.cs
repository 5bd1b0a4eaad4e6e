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

    private static readonly JsonSerializerOptions DefaultJson = new(JsonSerializerDefaults.Web);

    /// <summary>Creates an empty output (results serialised with the web defaults).</summary>
    public JobOutput() : this(null, null)
    {
    }

    internal JobOutput(JsonSerializerOptions? json, Func<CancellationToken, ValueTask<IReadOnlyList<JobInfo>>>? parents)
    {
        Json = json ?? DefaultJson;
        Parents = parents;
    }

    internal JsonSerializerOptions Json { get; }

    internal Func<CancellationToken, ValueTask<IReadOnlyList<JobInfo>>>? Parents { get; }

    /// <summary>The result as stored (JSON), or null when the handler set none.</summary>
    public string? ResultJson { get; private set; }

    /// <summary>
    /// Sets the job's result, serialised now with the queue's payload serialiser options; stored only
    /// if the attempt succeeds (a later call replaces it).
    /// </summary>
    /// <exception cref="ArgumentException">The serialised result is larger than <see cref="MaxResultBytes"/>.</exception>
    public void SetResult<TResult>(TResult value)
    {
        var json = JsonSerializer.Serialize(value, Json);
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
        ResultJson is null ? default : JsonSerializer.Deserialize<T>(ResultJson, options ?? new JsonSerializerOptions(JsonSerializerDefaults.Web));
}
