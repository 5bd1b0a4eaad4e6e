using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Scheduling;

/// <summary>
/// The ARA pipeline around any <see cref="IResourceEstimator"/>: hash the final command, skip (with
/// the reason recorded) when ARA is off, the job wants a GPU or there is no command; otherwise
/// estimate, fall back to the baseline without history, clamp to [floor, ceiling], and say what was
/// done. Both queues run it at enqueue, where the command is final.
/// </summary>
public sealed partial class ResourceAllocator
{
    private readonly IResourceEstimator _estimator;
    private readonly ICommandHasher _hasher;
    private readonly AraOptions _options;
    private readonly ILogger _logger;
    private readonly NormalizingCommandHasher? _normalizer;

    /// <summary>Creates the pipeline.</summary>
    public ResourceAllocator(IResourceEstimator estimator, ICommandHasher? hasher = null, AraOptions? options = null, ILogger<ResourceAllocator>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(estimator);
        _estimator = estimator;
        _hasher = hasher ?? Md5CommandHasher.Instance;
        _options = options ?? new AraOptions();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _normalizer = _options.NormalizeCommands ? new NormalizingCommandHasher(_hasher) : null;
    }

    /// <summary>The command's hash: the job's history key. Null when it has no command.</summary>
    public string? HashCommand(string? command) => _hasher.Hash(command);

    /// <summary>The normalised command's hash (the fallback key), when normalisation is on.</summary>
    public string? HashNormalizedCommand(string? command) => _normalizer?.Hash(command);

    /// <summary>What a job of <paramref name="definition"/> running <paramref name="command"/> gets, and why.</summary>
    public async ValueTask<ResourceAllocation> AllocateAsync(JobDefinition definition, string? command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(definition);
        var hash = HashCommand(command);
        var skip = !definition.AraEnabled ? AraSkipReason.Disabled
            : definition.Gpus > 0 ? AraSkipReason.Gpu
            : hash is null ? AraSkipReason.NullCommandHash
            : AraSkipReason.None;
        if (skip != AraSkipReason.None)
        {
            SchedulingMetrics.AraSkipped.Add(1, new KeyValuePair<string, object?>("reason", SkipTag(skip)));
            if (skip == AraSkipReason.Gpu) SchedulingMetrics.AraGpuSkipped.Add(1);
            if (skip == AraSkipReason.NullCommandHash)
            {
                SchedulingMetrics.AraNullHash.Add(1);
                NullCommand(_logger, definition.Id);
            }

            return Baseline(definition, skip);
        }

        var estimate = await _estimator.EstimateAsync(new EstimationRequest(definition.Id, hash!, HashNormalizedCommand(command), definition), cancellationToken).ConfigureAwait(false);
        if (estimate is null)
        {
            SchedulingMetrics.AraNoHistory.Add(1);
            SchedulingMetrics.AraEstimates.Add(1, new KeyValuePair<string, object?>("source", "baseline"));
            var baseline = Baseline(definition, AraSkipReason.None);
            var clampedBaseline = Math.Clamp(baseline.MemoryMb, _options.FloorMemoryMb, _options.CeilingMemoryMb);
            return baseline with { MemoryMb = clampedBaseline, Clamped = clampedBaseline != baseline.MemoryMb, CeilingHit = baseline.MemoryMb > _options.CeilingMemoryMb };
        }

        var memory = Math.Clamp(estimate.MemoryMb, _options.FloorMemoryMb, _options.CeilingMemoryMb);
        var ceilingHit = estimate.MemoryMb > _options.CeilingMemoryMb;
        if (ceilingHit)
        {
            SchedulingMetrics.AraCeilingHits.Add(1);
            CeilingHit(_logger, definition.Id, hash!, estimate.MemoryMb, _options.CeilingMemoryMb);
        }

        SchedulingMetrics.AraEstimates.Add(1, new KeyValuePair<string, object?>("source", SourceTag(estimate.Source)));
        if (definition.BaselineMemoryMb > 0) SchedulingMetrics.AraAdjustmentRatio.Record(memory / (double)definition.BaselineMemoryMb);
        return new ResourceAllocation
        {
            DefinitionId = definition.Id, MemoryMb = memory, CpuMillicores = Math.Max(1, estimate.CpuMillicores), Gpus = 0,
            BaselineMemoryMb = definition.BaselineMemoryMb, Source = estimate.Source, SkipReason = AraSkipReason.None,
            SampleCount = estimate.SampleCount, Clamped = memory != estimate.MemoryMb, CeilingHit = ceilingHit, Statistic = estimate.Statistic,
            ExpectedDuration = estimate.ExpectedDuration,
        };
    }

    /// <summary>
    /// How long a run of <paramref name="command"/> under <paramref name="definition"/> usually takes at
    /// most, from the same history and fallback chain that sizes it (<see cref="ResourceAllocation.ExpectedDuration"/>),
    /// without counting as an allocation; null when there is no history or no command.
    /// </summary>
    /// <param name="definition">The definition.</param>
    /// <param name="command">The final command.</param>
    /// <param name="cancellationToken">Cancels the history read.</param>
    /// <returns>The expected duration, or null.</returns>
    public async ValueTask<TimeSpan?> EstimateDurationAsync(JobDefinition definition, string? command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(definition);
        if (HashCommand(command) is not { } hash) return null;
        var estimate = await _estimator.EstimateAsync(new EstimationRequest(definition.Id, hash, HashNormalizedCommand(command), definition), cancellationToken).ConfigureAwait(false);
        return estimate?.ExpectedDuration;
    }

    internal static ResourceAllocation Baseline(JobDefinition definition, AraSkipReason reason) => new()
    {
        DefinitionId = definition.Id, MemoryMb = definition.BaselineMemoryMb, CpuMillicores = definition.CpuMillicores, Gpus = definition.Gpus,
        BaselineMemoryMb = definition.BaselineMemoryMb, Source = AllocationSource.Baseline, SkipReason = reason,
    };

    /// <summary>The tag of an allocation source, as metrics and stores name it (<c>command_history</c>, …, <c>baseline</c>).</summary>
    public static string SourceTag(AllocationSource source) => source switch
    {
        AllocationSource.CommandHistory => "command_history",
        AllocationSource.NormalizedCommandHistory => "normalized_command_history",
        AllocationSource.DefinitionHistory => "definition_history",
        AllocationSource.Baseline => "baseline",
        _ => throw new ArgumentOutOfRangeException(nameof(source), source, "Unknown allocation source."),
    };

    /// <summary>Reads a tag written by <see cref="SourceTag"/>; an unknown tag is an error, never a default.</summary>
    public static AllocationSource ParseSource(string? tag) => tag switch
    {
        "command_history" => AllocationSource.CommandHistory,
        "normalized_command_history" => AllocationSource.NormalizedCommandHistory,
        "definition_history" => AllocationSource.DefinitionHistory,
        "baseline" or null => AllocationSource.Baseline,
        _ => throw new InvalidOperationException($"Unknown allocation source '{tag}'."),
    };

    /// <summary>Reads a tag written by <see cref="SkipTag"/> (null: ARA was not skipped); an unknown tag is an error.</summary>
    public static AraSkipReason ParseSkip(string? tag) => tag switch
    {
        "disabled" => AraSkipReason.Disabled,
        "gpu" => AraSkipReason.Gpu,
        "null_command_hash" => AraSkipReason.NullCommandHash,
        "none" or null => AraSkipReason.None,
        _ => throw new InvalidOperationException($"Unknown ARA skip reason '{tag}'."),
    };

    /// <summary>The tag of a skip reason, as metrics and stores name it.</summary>
    public static string SkipTag(AraSkipReason reason) => reason switch
    {
        AraSkipReason.Disabled => "disabled",
        AraSkipReason.Gpu => "gpu",
        AraSkipReason.NullCommandHash => "null_command_hash",
        AraSkipReason.None => "none",
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "Unknown ARA skip reason."),
    };

    [LoggerMessage(3200, LogLevel.Warning, "A job of definition '{Definition}' has no command, so no command hash: ARA skipped, baseline used")]
    private static partial void NullCommand(ILogger logger, string definition);

    [LoggerMessage(3201, LogLevel.Warning, "ARA estimate for definition '{Definition}', command {CommandHash} is {EstimateMb} MB, above the ceiling {CeilingMb} MB: capped, not raised further")]
    private static partial void CeilingHit(ILogger logger, string definition, string commandHash, int estimateMb, int ceilingMb);
}
