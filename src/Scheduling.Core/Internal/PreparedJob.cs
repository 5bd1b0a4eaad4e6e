using System.Text;
using System.Text.Json;

namespace Scheduling.Internal;

/// <summary>
/// A request that passed validation, with its payload serialised: what a store writes. Immutable:
/// the enqueue steps that add to it (sizing, then the trace context) replace it in the batch.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public sealed record PreparedJob(
    string Queue,
    string Kind,
    string? PayloadJson,
    short Priority,
    DateTimeOffset? RunAt,
    int MaxAttempts,
    string? UniqueKey,
    UniqueKeyConflict OnUniqueConflict,
    UniqueKeyScope UniqueScope,
    string? Command,
    string? Description,
    JobDefinition? Definition)
{
    /// <summary>The hash of the final command (never of the description); set at enqueue.</summary>
    public string? CommandHash { get; init; }

    /// <summary>The normalised command's hash, when normalisation is on.</summary>
    public string? NormalizedCommandHash { get; init; }

    /// <summary>What the job is given, for jobs with a definition.</summary>
    public ResourceAllocation? Allocation { get; init; }

    /// <summary>The W3C traceparent of the enqueue, so processing continues the trace.</summary>
    public string? TraceParent { get; init; }

    /// <summary>The W3C tracestate of the enqueue.</summary>
    public string? TraceState { get; init; }

    /// <summary>What the job does when a parent ends dead or cancelled.</summary>
    public ParentFailurePolicy OnParentFailure { get; init; }

    /// <summary>The job's own attempt timeout (whole milliseconds), if it has one.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>The version of the payload's shape.</summary>
    public short PayloadVersion { get; init; }

    /// <summary>The key the queue's per-key limits count it under, if any.</summary>
    public string? PartitionKey { get; init; }

    /// <summary>The latest time it may start, if it has a deadline (storage precision).</summary>
    public DateTimeOffset? LatestStartAt { get; init; }

    /// <summary>When it must be done by, if it has such a deadline: its latest start is derived from it once its expected duration is known (<see cref="JobValidation.LatestStart"/>).</summary>
    public DateTimeOffset? FinishBy { get; init; }

    /// <summary>The batch it is a member or a callback of, if any.</summary>
    public long? BatchId { get; init; }

    /// <summary>True for a batch callback: it waits for its batch to settle (one pending parent, which the batch stands for).</summary>
    public bool HeldByBatch { get; init; }
}

/// <summary>A validated batch: one enqueue call holding its members, then its callbacks (on-success first).</summary>
/// <param name="Jobs">The members, then the callbacks.</param>
/// <param name="MemberCount">How many of <paramref name="Jobs"/> are members.</param>
/// <param name="HasOnSuccess">An on-success callback was given (the first after the members).</param>
/// <param name="HasOnComplete">An on-complete callback was given (the last).</param>
/// <param name="ParentBatchId">The batch this one is nested in, if any.</param>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public sealed record PreparedJobBatch(PreparedBatch Jobs, int MemberCount, bool HasOnSuccess, bool HasOnComplete, long? ParentBatchId)
{
    /// <summary>The call as written once the batch has its id: every member and callback carries it, and the callbacks wait for it.</summary>
    public PreparedBatch For(long batchId) =>
        Jobs with { Jobs = Jobs.Jobs.Select((j, i) => j with { BatchId = batchId, HeldByBatch = i >= MemberCount }).ToList() };

    /// <summary>The members' results (what a store counts) from the results of writing <see cref="For"/>.</summary>
    public ArraySegment<EnqueueResult> Members(EnqueueResult[] written) => new(written, 0, MemberCount);

    /// <summary>The callbacks' job ids, from the results of writing <see cref="For"/>.</summary>
    public (long? OnSuccess, long? OnComplete) CallbackIds(EnqueueResult[] written) =>
        (HasOnSuccess ? written[MemberCount].JobId : null, HasOnComplete ? written[^1].JobId : null);

    /// <summary>What the enqueue returns, from the results of writing <see cref="For"/>.</summary>
    public BatchResult Result(long batchId, EnqueueResult[] written)
    {
        var (onSuccess, onComplete) = CallbackIds(written);
        return new BatchResult(batchId, Members(written).ToArray(), onSuccess, onComplete);
    }
}

/// <summary>Validated requests of one enqueue call and the graph of their dependencies.</summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public sealed record PreparedBatch(List<PreparedJob> Jobs, JobGraph Graph)
{
    /// <summary>How a request of this call is named in errors.</summary>
    public Func<int, string> Name { get; init; } = static i => $"requests[{i}]";

    /// <summary>The call with every job a member of batch <paramref name="batchId"/> (jobs added to an open batch).</summary>
    public PreparedBatch InBatch(long batchId) => this with { Jobs = Jobs.ConvertAll(j => j with { BatchId = batchId }) };
}

/// <summary>
/// The validation every queue applies before writing anything, so both stores reject the same
/// input with the same message.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public static partial class JobValidation
{
    // A \uD800-\uDBFF escape not followed by \uDC00-\uDFFF, or a low one not preceded by a high one;
    // the lookbehind skips escaped backslashes ("\\uD800" is text, not an escape).
    [System.Text.RegularExpressions.GeneratedRegex(@"(?<=(?:^|[^\\])(?:\\\\)*)(?:\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})")]
    private static partial System.Text.RegularExpressions.Regex UnpairedSurrogateEscape();

    /// <summary>Longest queue name.</summary>
    public const int MaxQueueLength = 64;
    /// <summary>Longest kind.</summary>
    public const int MaxKindLength = 200;
    /// <summary>Longest unique key.</summary>
    public const int MaxUniqueKeyLength = 512;
    /// <summary>Longest partition key.</summary>
    public const int MaxPartitionKeyLength = 200;
    /// <summary>Longest worker id.</summary>
    public const int MaxWorkerIdLength = 200;
    /// <summary>Most jobs one acquisition may take.</summary>
    public const int MaxAcquireBatch = 10_000;

    /// <summary>The most jobs one enqueue call takes (each call is one transaction, held in memory whole).</summary>
    public const int MaxJobsPerCall = 100_000;

    /// <summary>The longest W3C tracestate kept with a job: the length its specification asks propagators to support; list members past it are dropped.</summary>
    public const int MaxTraceStateLength = 512;

    /// <summary>A tracestate cut to <see cref="MaxTraceStateLength"/> at a list-member boundary (null when nothing fits).</summary>
    public static string? CapTraceState(string? traceState)
    {
        if (traceState is null || traceState.Length <= MaxTraceStateLength) return traceState;
        var kept = new System.Text.StringBuilder(MaxTraceStateLength);
        foreach (var member in traceState.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (kept.Length + (kept.Length > 0 ? 1 : 0) + member.Length > MaxTraceStateLength) break;
            if (kept.Length > 0) kept.Append(',');
            kept.Append(member);
        }

        return kept.Length == 0 ? null : kept.ToString();
    }
    /// <summary>The longest attempt timeout a job may carry.</summary>
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromDays(7);

    /// <summary>Largest MaxAttempts.</summary>
    public const int MaxMaxAttempts = 10_000;
    /// <summary>Longest command.</summary>
    public const int MaxCommandLength = 65_536;
    /// <summary>Longest description.</summary>
    public const int MaxDescriptionLength = 4_000;


    /// <summary>The longest unique period.</summary>
    public static readonly TimeSpan MaxUniquePeriod = TimeSpan.FromDays(366);

    /// <summary>
    /// The unique key a store holds for <paramref name="request"/>, in one place: its own key, then its
    /// kind and a SHA-256 of its payload's JSON when unique by payload, then the start of its window
    /// (UTC, from run-at or the enqueuing host's clock, in multiples of the period since 0001-01-01) when
    /// unique per period, which a job holds in any state (one per window, however fast it finished).
    /// </summary>
    private static (string? Key, UniqueKeyScope Scope) StoredUniqueKey(JobRequest request, string? payloadJson, string parameterName)
    {
        var key = request.UniqueKey;
        if (request.UniqueByPayload)
        {
            var digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(payloadJson ?? "null")));
            key = (key is null ? "" : key + "|") + $"{request.Kind}:{digest}";
        }

        if (request.UniquePeriod is not { } period) return (key, request.UniqueScope);
        if (period < TimeSpan.FromSeconds(1) || period > MaxUniquePeriod || period.Ticks % TimeSpan.TicksPerSecond != 0)
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(JobRequest.UniquePeriod)}", period, $"UniquePeriod must be whole seconds between 1 s and {MaxUniquePeriod.TotalDays:0} days (was {period}).");
        if (key is null)
            throw new ArgumentException($"UniquePeriod needs a key: set {nameof(JobRequest.UniqueKey)} or {nameof(JobRequest.UniqueByPayload)}.", $"{parameterName}.{nameof(JobRequest.UniquePeriod)}");
        var at = (request.RunAt ?? DateTimeOffset.UtcNow).UtcTicks;
        var window = new DateTimeOffset(at - at % period.Ticks, TimeSpan.Zero);
        return ($"{key}@{window:yyyy-MM-ddTHH:mm:ssZ}", UniqueKeyScope.AnyState);
    }

    /// <summary>Validates one request and serialises its payload; the error names the argument and what was wrong.</summary>
    public static PreparedJob Prepare(JobRequest request, JobQueueOptions options, string parameterName = "request")
    {
        ArgumentNullException.ThrowIfNull(request, parameterName);
        ValidateQueueName(request.Queue, $"{parameterName}.{nameof(JobRequest.Queue)}");
        ValidateKind(request.Kind, $"{parameterName}.{nameof(JobRequest.Kind)}");
        if (request.Priority is < short.MinValue or > short.MaxValue)
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(JobRequest.Priority)}", request.Priority, $"Priority must be between {short.MinValue} and {short.MaxValue}.");
        if (request.MaxAttempts is < 1 or > MaxMaxAttempts)
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(JobRequest.MaxAttempts)}", request.MaxAttempts, $"MaxAttempts must be between 1 and {MaxMaxAttempts}.");
        if (!Enum.IsDefined(request.OnUniqueConflict))
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(JobRequest.OnUniqueConflict)}", request.OnUniqueConflict, $"Unknown unique-key conflict mode {(int)request.OnUniqueConflict}; use {nameof(UniqueKeyConflict.ReturnExisting)}, {nameof(UniqueKeyConflict.Reject)} or {nameof(UniqueKeyConflict.Replace)}.");
        if (!Enum.IsDefined(request.UniqueScope))
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(JobRequest.UniqueScope)}", request.UniqueScope, $"Unknown unique-key scope {(int)request.UniqueScope}; use {nameof(UniqueKeyScope.Active)} or {nameof(UniqueKeyScope.AnyState)}.");
        if (request.UniqueKey is not null && (request.UniqueKey.Length == 0 || request.UniqueKey.Length > MaxUniqueKeyLength))
            throw new ArgumentException($"UniqueKey must be null or 1-{MaxUniqueKeyLength} characters (was {request.UniqueKey.Length}).", $"{parameterName}.{nameof(JobRequest.UniqueKey)}");
        if (request.UniqueKey is not null && request.UniqueKey.Contains('\0', StringComparison.Ordinal))
            throw new ArgumentException("UniqueKey must not contain NUL characters.", $"{parameterName}.{nameof(JobRequest.UniqueKey)}");

        if (request.Command is { Length: > MaxCommandLength })
            throw new ArgumentException($"The command is {request.Command.Length} characters long; the limit is {MaxCommandLength}.", $"{parameterName}.{nameof(JobRequest.Command)}");
        if (request.Command?.Contains('\0', StringComparison.Ordinal) == true || request.Description?.Contains('\0', StringComparison.Ordinal) == true)
            throw new ArgumentException("The command and description must not contain NUL characters.", $"{parameterName}.{(request.Command?.Contains('\0', StringComparison.Ordinal) == true ? nameof(JobRequest.Command) : nameof(JobRequest.Description))}");
        if (request.Description is { Length: > MaxDescriptionLength })
            throw new ArgumentException($"The description is {request.Description.Length} characters long; the limit is {MaxDescriptionLength}.", $"{parameterName}.{nameof(JobRequest.Description)}");
        if (request.Definition is { } d) ValidateDefinition(d, $"{parameterName}.{nameof(JobRequest.Definition)}");
        if (request.Timeout is { } timeout && (timeout < TimeSpan.FromMilliseconds(1) || timeout > MaxTimeout || timeout.Ticks % TimeSpan.TicksPerMillisecond != 0))
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(JobRequest.Timeout)}", timeout, $"Timeout must be whole milliseconds between 1 ms and {MaxTimeout.TotalDays:0} days (was {timeout}).");
        if (request.PayloadVersion is < 0 or > short.MaxValue)
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(JobRequest.PayloadVersion)}", request.PayloadVersion, $"PayloadVersion must be between 0 and {short.MaxValue} (was {request.PayloadVersion}).");
        if (request.PartitionKey is not null && (request.PartitionKey.Length is 0 or > MaxPartitionKeyLength || request.PartitionKey.Contains('\0', StringComparison.Ordinal)))
            throw new ArgumentException($"PartitionKey must be null or 1-{MaxPartitionKeyLength} characters without NUL (was {request.PartitionKey.Length} characters).", $"{parameterName}.{nameof(JobRequest.PartitionKey)}");
        if (request is { FinishBy: { } finishBy, RunAt: { } start } && finishBy < start)
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(JobRequest.FinishBy)}", finishBy, $"FinishBy ({finishBy:O}) is before RunAt ({start:O}): the job could never finish in time.");
        if (request is { LatestStartAt: { } latestStart, RunAt: { } due } && latestStart < due)
            throw new ArgumentOutOfRangeException($"{parameterName}.{nameof(JobRequest.LatestStartAt)}", latestStart, $"LatestStartAt ({latestStart:O}) is before RunAt ({due:O}): the job could never start.");
        RequireValidUnicode(request.Kind, $"{parameterName}.{nameof(JobRequest.Kind)}");
        RequireValidUnicode(request.PartitionKey, $"{parameterName}.{nameof(JobRequest.PartitionKey)}");
        RequireValidUnicode(request.UniqueKey, $"{parameterName}.{nameof(JobRequest.UniqueKey)}");
        RequireValidUnicode(request.Command, $"{parameterName}.{nameof(JobRequest.Command)}");
        RequireValidUnicode(request.Description, $"{parameterName}.{nameof(JobRequest.Description)}");
        RequireValidUnicode(request.Definition?.Id, $"{parameterName}.{nameof(JobRequest.Definition)}.Id");

        var payload = SerializePayload(request, options, $"{parameterName}.{nameof(JobRequest.Payload)}");
        var (uniqueKey, uniqueScope) = StoredUniqueKey(request, payload, parameterName);
        return new PreparedJob(request.Queue, request.Kind, payload, (short)request.Priority, request.RunAt is { } runAt ? Clock.ToStoragePrecision(runAt) : null,
            request.MaxAttempts, uniqueKey, request.OnUniqueConflict, uniqueScope, request.Command, request.Description, request.Definition)
        {
            OnParentFailure = request.OnParentFailure,
            Timeout = request.Timeout,
            PartitionKey = request.PartitionKey,
            PayloadVersion = (short)request.PayloadVersion,
            LatestStartAt = request.LatestStartAt is { } latest ? Clock.ToStoragePrecision(latest) : null,
            FinishBy = request.FinishBy,
        };
    }

    /// <summary>Validates one request, its dependencies included.</summary>
    public static PreparedBatch PrepareOne(JobRequest request, JobQueueOptions options)
    {
        var job = Prepare(request, options);
        return new PreparedBatch([job], JobGraph.Build([request], static _ => "request")) { Name = static _ => "request" };
    }

    /// <summary>Rejects strings that are not valid Unicode (an unpaired surrogate cannot be stored as UTF-8 text).</summary>
    private static void RequireValidUnicode(string? value, string parameterName)
    {
        if (value is null) return;
        for (var i = 0; i < value.Length; i++)
        {
            if (!char.IsSurrogate(value[i])) continue;
            if (char.IsHighSurrogate(value[i]) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1])) { i++; continue; }
            throw new ArgumentException($"The text contains an unpaired surrogate (U+{(int)value[i]:X4}) at index {i}; it is not valid Unicode and cannot be stored.", parameterName);
        }
    }

    private static void ValidateDefinition(JobDefinition definition, string parameterName)
    {
        if (string.IsNullOrWhiteSpace(definition.Id) || definition.Id.Length > MaxKindLength)
            throw new ArgumentException($"A definition id of 1-{MaxKindLength} characters is required.", parameterName + ".Id");
        if (definition.BaselineMemoryMb < 0) throw new ArgumentOutOfRangeException(parameterName + ".BaselineMemoryMb", definition.BaselineMemoryMb, "Baseline memory must not be negative.");
        if (definition.CpuMillicores < 0) throw new ArgumentOutOfRangeException(parameterName + ".CpuMillicores", definition.CpuMillicores, "CPU must not be negative.");
        if (definition.Gpus < 0) throw new ArgumentOutOfRangeException(parameterName + ".Gpus", definition.Gpus, "GPUs must not be negative.");
    }

    /// <summary>
    /// Hashes each job's final command (never its description) and sizes the jobs that name a
    /// definition: the enqueue-time half of ARA, shared by every queue.
    /// </summary>
    public static async ValueTask AllocateAsync(List<PreparedJob> jobs, ResourceAllocator? allocator, CancellationToken cancellationToken)
    {
        for (var i = 0; i < jobs.Count; i++)
        {
            var job = jobs[i];
            var allocation = job.Definition is not { } definition ? null
                : allocator is null ? ResourceAllocator.Baseline(definition, AraSkipReason.None)
                : await allocator.AllocateAsync(definition, job.Command, cancellationToken).ConfigureAwait(false);
            jobs[i] = job with
            {
                CommandHash = allocator is null ? Md5CommandHasher.Instance.Hash(job.Command) : allocator.HashCommand(job.Command),
                NormalizedCommandHash = allocator?.HashNormalizedCommand(job.Command),
                Allocation = allocation,
                LatestStartAt = LatestStart(job.LatestStartAt, job.FinishBy, allocation?.ExpectedDuration),
            };
        }
    }

    /// <summary>
    /// The latest time a job may start: <paramref name="given"/>, or when it must finish by <paramref name="finishBy"/>,
    /// that less its <paramref name="expectedDuration"/> (the deadline itself without one) when that is earlier.
    /// A job expected to miss its deadline gets a latest start already past and expires unstarted.
    /// </summary>
    public static DateTimeOffset? LatestStart(DateTimeOffset? given, DateTimeOffset? finishBy, TimeSpan? expectedDuration)
    {
        if (finishBy is not { } deadline) return given;
        var derived = Clock.ToStoragePrecision(deadline - (expectedDuration ?? TimeSpan.Zero));
        return given is { } latest && latest < derived ? latest : derived;
    }

    /// <summary>Validates the requests of one enqueue call and the graph of their dependencies.</summary>
    public static PreparedBatch PrepareAll(IReadOnlyList<JobRequest> requests, JobQueueOptions options) => PrepareAll(requests, options, nameof(requests));

    /// <summary>Validates a batch as one call: its members (named <c>batch.Jobs[i]</c>), then its callbacks (<c>batch.OnSuccess</c>, <c>batch.OnComplete</c>).</summary>
    public static PreparedJobBatch PrepareBatch(BatchRequest batch, JobQueueOptions options)
    {
        BatchRules.Validate(batch);
        var requests = batch.Jobs.ToList();
        var callbackNames = new List<string>();
        if (batch.OnSuccess is { } onSuccess) { requests.Add(onSuccess); callbackNames.Add("batch.OnSuccess"); }
        if (batch.OnComplete is { } onComplete) { requests.Add(onComplete); callbackNames.Add("batch.OnComplete"); }
        var members = batch.Jobs.Count;
        var prepared = PrepareAll(requests, options, "batch.Jobs", i => i < members ? $"batch.Jobs[{i}]" : callbackNames[i - members]);
        return new PreparedJobBatch(prepared, members, batch.OnSuccess is not null, batch.OnComplete is not null, batch.ParentBatchId);
    }

    private static PreparedBatch PrepareAll(IReadOnlyList<JobRequest> requests, JobQueueOptions options, string parameterName, Func<int, string>? named = null)
    {
        ArgumentNullException.ThrowIfNull(requests, parameterName);
        if (requests.Count > MaxJobsPerCall)
            throw new ArgumentException($"{requests.Count:N0} jobs were given in one call; the limit is {MaxJobsPerCall:N0} (split them into several calls, each all or nothing).", parameterName);
        named ??= i => $"{parameterName}[{i}]";
        var prepared = new List<PreparedJob>(requests.Count);
        var firstWithKey = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < requests.Count; i++)
        {
            var job = Prepare(requests[i], options, named(i));
            var scopedKey = job.UniqueKey is null ? null : $"{(int)job.UniqueScope}:{job.UniqueKey}";
            if (scopedKey is not null && !firstWithKey.TryAdd(scopedKey, i) && job.OnUniqueConflict == UniqueKeyConflict.Reject)
                throw new ArgumentException($"{named(i)} repeats the unique key '{job.UniqueKey}' of {named(firstWithKey[scopedKey])} and asks to be rejected on conflict.", $"{named(i)}.{nameof(JobRequest.UniqueKey)}");
            prepared.Add(job);
        }

        return new PreparedBatch(prepared, JobGraph.Build(requests, named)) { Name = named };
    }

    /// <summary>Rejects null limits, or a limit out of range (naming the property).</summary>
    public static void ValidateQueueLimits(QueueLimits? limits, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(limits, parameterName);
        limits.Validate(parameterName);
    }

    /// <summary>Rejects an empty, too long or badly formed queue name.</summary>
    public static void ValidateQueueName(string? queue, string parameterName)
    {
        if (string.IsNullOrEmpty(queue))
            throw new ArgumentException("A queue name is required (1-64 characters of letters, digits, '_', '-', '.' or ':').", parameterName);
        if (queue.Length > MaxQueueLength)
            throw new ArgumentException($"Queue name is {queue.Length} characters long; the limit is {MaxQueueLength}.", parameterName);
        foreach (var c in queue)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or ':'))
                throw new ArgumentException($"Queue name '{queue}' contains '{c}' (U+{(int)c:X4}); only letters, digits, '_', '-', '.' and ':' are allowed.", parameterName);
        }
    }

    /// <summary>Rejects an empty or too long kind.</summary>
    public static void ValidateKind(string? kind, string parameterName)
    {
        if (string.IsNullOrWhiteSpace(kind))
            throw new ArgumentException("A job kind (the handler name) is required.", parameterName);
        if (kind.Length > MaxKindLength)
            throw new ArgumentException($"Job kind is {kind.Length} characters long; the limit is {MaxKindLength}.", parameterName);
        foreach (var c in kind)
        {
            if (char.IsControl(c))
                throw new ArgumentException($"Job kind contains the control character U+{(int)c:X4}.", parameterName);
        }
    }

    /// <summary>Rejects an acquisition request a store cannot serve, naming the field.</summary>
    public static void ValidateAcquire(AcquireRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Queues is null || request.Queues.Count == 0)
            throw new ArgumentException("At least one queue is required.", "request.Queues");
        if (request.Queues.Count > FairShare.MaxQueues)
            throw new ArgumentException($"{request.Queues.Count} queues were given; the limit is {FairShare.MaxQueues}.", "request.Queues");
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < request.Queues.Count; i++)
        {
            var share = request.Queues[i] ?? throw new ArgumentNullException($"request.Queues[{i}]");
            ValidateQueueName(share.Queue, request.Queues.Count == 1 ? "request.Queue" : $"request.Queues[{i}].Queue");
            if (!names.Add(share.Queue)) throw new ArgumentException($"The queue '{share.Queue}' is listed twice.", $"request.Queues[{i}].Queue");
            if (share.Weight is < 1 or > FairShare.MaxWeight)
                throw new ArgumentOutOfRangeException($"request.Queues[{i}].Weight", share.Weight, $"A queue's weight must be between 1 and {FairShare.MaxWeight}.");
        }

        ValidateWorkerId(request.WorkerId, "request.WorkerId");
        if (request.MaxJobs is < 1 or > MaxAcquireBatch)
            throw new ArgumentOutOfRangeException("request.MaxJobs", request.MaxJobs, $"MaxJobs must be between 1 and {MaxAcquireBatch}.");
        ValidateLeaseDuration(request.LeaseDuration, "request.LeaseDuration");
        request.Capacity?.Validate("request.Capacity");
        if (request.Available is { } available)
        {
            if (request.Capacity is null) throw new ArgumentException("Available was given without the Capacity it is part of.", "request.Available");
            available.Validate("request.Available");
        }
    }

    /// <summary>Rejects queue rules a store cannot work with; stores check them when constructed.</summary>
    public static void ValidateOptions(JobQueueOptions options, string parameterName)
    {
        var errors = new List<string>();
        options.Validate(errors, parameterName);
        if (errors.Count > 0) throw new ArgumentException(string.Join(" ", errors), parameterName);
    }

    /// <summary>Rejects a count cap outside 1 to 1,000,000.</summary>
    public static void ValidateCountCap(int cap)
    {
        if (cap is < 1 or > 1_000_000) throw new ArgumentOutOfRangeException(nameof(cap), cap, "The cap must be between 1 and 1,000,000.");
    }

    /// <summary>Rejects an activity window outside 1 minute to 1 day.</summary>
    public static void ValidateActivityWindow(TimeSpan window)
    {
        if (window < TimeSpan.FromMinutes(1) || window > TimeSpan.FromDays(1))
            throw new ArgumentOutOfRangeException(nameof(window), window, "The activity window must be between 1 minute and 1 day.");
    }

    /// <summary>Rejects a host report a store cannot record, naming the field.</summary>
    public static void ValidateHostReport(WorkerHostInfo host, TimeSpan expiresAfter)
    {
        ArgumentNullException.ThrowIfNull(host);
        ValidateWorkerId(host.WorkerId, "host.WorkerId");
        if (host.Queues is null || host.Queues.Count == 0) throw new ArgumentException("A host serves at least one queue.", "host.Queues");
        for (var i = 0; i < host.Queues.Count; i++) ValidateQueueName(host.Queues[i], $"host.Queues[{i}]");
        host.Capacity?.Validate("host.Capacity");
        ValidateLeaseDuration(expiresAfter, nameof(expiresAfter));
    }

    /// <summary>Rejects a heartbeat a store cannot serve.</summary>
    public static void ValidateHeartbeat(string workerId, IReadOnlyList<JobLease> leases, TimeSpan leaseDuration, IReadOnlyList<JobProgressUpdate>? progress = null)
    {
        ValidateWorkerId(workerId, nameof(workerId));
        ArgumentNullException.ThrowIfNull(leases);
        ValidateLeaseDuration(leaseDuration, nameof(leaseDuration));
        for (var i = 0; i < (progress?.Count ?? 0); i++) ValidateProgress(progress![i].Progress, $"progress[{i}].Progress");
    }

    /// <summary>Rejects a progress report out of bounds (the bounds of <see cref="JobOutput"/>), naming the property.</summary>
    public static void ValidateProgress(JobProgress? report, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(report, parameterName);
        if (report.Fraction is { } f && !(f >= 0 && f <= 1))
            throw new ArgumentOutOfRangeException($"{parameterName}.Fraction", f, "Progress is a fraction between 0 and 1.");
        if (report.Message is { Length: > JobOutput.MaxProgressMessageLength })
            throw new ArgumentException($"A progress message is at most {JobOutput.MaxProgressMessageLength} characters (was {report.Message.Length}).", $"{parameterName}.Message");
        if (report.MetadataJson is { } metadata && Encoding.UTF8.GetByteCount(metadata) > JobOutput.MaxMetadataBytes)
            throw new ArgumentException($"Progress metadata is at most {JobOutput.MaxMetadataBytes:N0} bytes of JSON.", $"{parameterName}.MetadataJson");
    }

    /// <summary>Rejects an empty or too long worker id.</summary>
    public static void ValidateWorkerId(string? workerId, string parameterName)
    {
        if (string.IsNullOrWhiteSpace(workerId))
            throw new ArgumentException("A worker id is required.", parameterName);
        if (workerId.Length > MaxWorkerIdLength)
            throw new ArgumentException($"Worker id is {workerId.Length} characters long; the limit is {MaxWorkerIdLength}.", parameterName);
    }

    /// <summary>Rejects a lease shorter than a second or longer than a day.</summary>
    public static void ValidateLeaseDuration(TimeSpan leaseDuration, string parameterName)
    {
        if (leaseDuration < TimeSpan.FromSeconds(1) || leaseDuration > TimeSpan.FromDays(1))
            throw new ArgumentOutOfRangeException(parameterName, leaseDuration, "The lease duration must be between 1 second and 1 day.");
    }

    /// <summary>Rejects acknowledgements of an unknown kind.</summary>
    public static void ValidateAcks(IReadOnlyList<JobAck> acks)
    {
        ArgumentNullException.ThrowIfNull(acks);
        for (var i = 0; i < acks.Count; i++)
        {
            if (!Enum.IsDefined(acks[i].Kind))
                throw new ArgumentOutOfRangeException($"acks[{i}].Kind", acks[i].Kind, "Unknown acknowledgement kind.");
            if (acks[i].Kind == JobAckKind.Snoozed && (acks[i].Delay < TimeSpan.Zero || acks[i].Delay > SnoozeJobException.MaxDelay))
                throw new ArgumentOutOfRangeException($"acks[{i}].Delay", acks[i].Delay, $"A snooze lasts from zero to {SnoozeJobException.MaxDelay.TotalDays:0} days.");
            if (acks[i].Snoozes < 0)
                throw new ArgumentOutOfRangeException($"acks[{i}].Snoozes", acks[i].Snoozes, "The snooze count cannot be negative.");
            if (acks[i].ResultJson is { } result && Encoding.UTF8.GetByteCount(result) > JobOutput.MaxResultBytes)
                throw new ArgumentException($"A result is at most {JobOutput.MaxResultBytes:N0} bytes of JSON.", $"acks[{i}].ResultJson");
            if (acks[i].Progress is { } report) ValidateProgress(report, $"acks[{i}].Progress");
        }
    }

    /// <summary>
    /// Whether an acknowledgement is evidence for the run history: a run that finished or failed and
    /// reported its peak memory or an OOM kill (a released or cancelled run, or one that measured
    /// nothing, says nothing about the need). Every store applies this one rule.
    /// </summary>
    public static bool CarriesRunRecord(JobAck ack) =>
        ack.Kind is JobAckKind.Succeeded or JobAckKind.Failed && ack.Usage is { } usage && (usage.OomKilled || usage.PeakMemoryMb is not null);

    /// <summary>The run-history record of an acknowledged run, for sized jobs with a command whose usage was reported.</summary>
    public static RunOutcome? ToOutcome(JobAck ack, ResourceAllocation? allocation, string? commandHash, string? normalizedHash, DateTimeOffset now)
    {
        if (!CarriesRunRecord(ack) || allocation is null || commandHash is null) return null;
        var usage = ack.Usage!;
        var peak = usage.OomKilled ? Math.Min(usage.PeakMemoryMb ?? allocation.MemoryMb, allocation.MemoryMb) : usage.PeakMemoryMb!.Value;
        return new RunOutcome(allocation.DefinitionId, commandHash, normalizedHash, allocation.MemoryMb, peak, usage.PeakCpuMillicores,
            ack.RunDuration ?? TimeSpan.Zero, usage.ExitCode, usage.OomKilled, now);
    }

    /// <summary>
    /// Makes a handler's error text storable: trimmed to the configured length (never inside a
    /// surrogate pair) so a huge stack trace cannot bloat the row, NULs and lone surrogates (which
    /// no database encoding accepts; a handler may echo them from bad input) replaced by U+FFFD.
    /// </summary>
    public static string TrimError(string? error, JobQueueOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(error)) return JobTransitions.NoErrorMessage;
        var length = error.Length <= options.MaxErrorLength ? error.Length : options.MaxErrorLength - 1;
        if (length < error.Length && length > 0 && char.IsHighSurrogate(error[length - 1])) length--; // keep the pair whole
        var text = new System.Text.StringBuilder(length + 1);
        for (var i = 0; i < length; i++)
        {
            var c = error[i];
            if (c == '\0') text.Append(' ');
            else if (char.IsHighSurrogate(c) && i + 1 < length && char.IsLowSurrogate(error[i + 1])) text.Append(c).Append(error[++i]);
            else if (char.IsSurrogate(c)) text.Append('\uFFFD');
            else text.Append(c);
        }

        if (length < error.Length) text.Append('…');
        return text.ToString();
    }

    private static string? SerializePayload(JobRequest request, JobQueueOptions options, string parameterName)
    {
        if (request.Payload is null) return null;
        string json;
        try
        {
            json = PayloadSerializer.Serialize(request.Payload, request.Payload.GetType(), JobExecutor.PayloadSerializerOptions(options));
        }
        catch (Exception ex) when (ex is NotSupportedException or JsonException or InvalidOperationException or ArgumentException)
        {
            throw new ArgumentException($"The payload of a '{request.Kind}' job ({request.Payload.GetType().Name}) cannot be serialised to JSON: {ex.Message}", parameterName, ex);
        }

        // PostgreSQL's jsonb cannot hold U+0000 nor unpaired surrogates; reject them here so every store behaves alike.
        if (json.Contains("\\u", StringComparison.Ordinal) && UnpairedSurrogateEscape().IsMatch(json))
            throw new ArgumentException("The payload contains an unpaired surrogate, which is not valid Unicode and cannot be stored.", parameterName);
        if (json.Contains("\\u0000", StringComparison.Ordinal))
            throw new ArgumentException("The payload contains a NUL character (U+0000), which cannot be stored.", parameterName);
        var bytes = Encoding.UTF8.GetByteCount(json);
        if (bytes > options.MaxPayloadBytes)
            throw new ArgumentException($"The payload is {bytes} bytes of JSON; the limit ({nameof(JobQueueOptions)}.{nameof(JobQueueOptions.MaxPayloadBytes)}) is {options.MaxPayloadBytes}.", parameterName);
        return json;
    }
}
