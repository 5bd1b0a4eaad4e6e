namespace Scheduling;

/// <summary>
/// What kind of job this is for resource sizing: its definition's identity, baseline resources,
/// and whether adaptive resource allocation (ARA) may size it from history.
/// </summary>
/// <param name="Id">The definition's id (1-200 characters): history is kept per definition and command.</param>
/// <param name="BaselineMemoryMb">The memory a job gets without history (and always, without ARA).</param>
/// <param name="CpuMillicores">The baseline CPU.</param>
/// <param name="Gpus">GPUs requested; jobs asking for a GPU skip ARA.</param>
/// <param name="AraEnabled">Whether ARA may size jobs of this definition.</param>
public sealed record JobDefinition(string Id, int BaselineMemoryMb, int CpuMillicores = 1000, int Gpus = 0, bool AraEnabled = true);

/// <summary>Where a job's resources came from.</summary>
public enum AllocationSource
{
    /// <summary>The definition's baseline (no usable history, or ARA skipped).</summary>
    Baseline = 0,
    /// <summary>Runs of the same definition and command.</summary>
    CommandHistory = 1,
    /// <summary>Runs of the same definition and normalised command (volatile parts masked).</summary>
    NormalizedCommandHistory = 2,
    /// <summary>Runs of the same definition with any command.</summary>
    DefinitionHistory = 3,
}

/// <summary>Why ARA did not size a job.</summary>
public enum AraSkipReason
{
    /// <summary>ARA sized the job (or tried: see <see cref="ResourceAllocation.Source"/>).</summary>
    None = 0,
    /// <summary>The definition has ARA off.</summary>
    Disabled = 1,
    /// <summary>The job asks for a GPU.</summary>
    Gpu = 2,
    /// <summary>The job has no command, so no hash and no history (a malformed job).</summary>
    NullCommandHash = 3,
}

/// <summary>An estimator's proposal, before clamping.</summary>
/// <param name="MemoryMb">Proposed memory.</param>
/// <param name="CpuMillicores">Proposed CPU.</param>
/// <param name="Source">Which history it came from.</param>
/// <param name="SampleCount">How many runs it used.</param>
/// <param name="Statistic">How it was computed, for the record (e.g. "weighted p99 x 1.1, half-life 24 h").</param>
/// <param name="ExpectedDuration">How long a run usually takes at most, from the same history (null: no run to tell).</param>
public sealed record ResourceEstimate(int MemoryMb, int CpuMillicores, AllocationSource Source, int SampleCount, string Statistic, TimeSpan? ExpectedDuration = null);

/// <summary>What a job was given and why: stored on the job.</summary>
public sealed record ResourceAllocation
{
    /// <summary>The definition sized against.</summary>
    public required string DefinitionId { get; init; }
    /// <summary>Memory given.</summary>
    public required int MemoryMb { get; init; }
    /// <summary>CPU given.</summary>
    public required int CpuMillicores { get; init; }
    /// <summary>GPUs given.</summary>
    public required int Gpus { get; init; }
    /// <summary>The definition's baseline memory.</summary>
    public required int BaselineMemoryMb { get; init; }
    /// <summary>Where the numbers came from.</summary>
    public required AllocationSource Source { get; init; }
    /// <summary>Why ARA was skipped, if it was.</summary>
    public required AraSkipReason SkipReason { get; init; }
    /// <summary>Runs the estimate used.</summary>
    public int SampleCount { get; init; }
    /// <summary>True when the estimate was cut to the ceiling or raised to the floor.</summary>
    public bool Clamped { get; init; }
    /// <summary>True when the estimate was cut to the ceiling: the need may exceed what can be given.</summary>
    public bool CeilingHit { get; init; }
    /// <summary>The estimator's description of its statistic.</summary>
    public string? Statistic { get; init; }

    /// <summary>
    /// How long a run of this command usually takes at most, from the history that sized it (the same
    /// fallback chain); null without history. A running job is expected to finish by its start plus this.
    /// </summary>
    public TimeSpan? ExpectedDuration { get; init; }
}

/// <summary>What a finished run used, reported by its handler (or measured by the host).</summary>
public sealed class ResourceUsage
{
    /// <summary>Peak memory in MB.</summary>
    public int? PeakMemoryMb { get; set; }
    /// <summary>Peak CPU in millicores.</summary>
    public int? PeakCpuMillicores { get; set; }
    /// <summary>The process exit code, if the job ran one.</summary>
    public int? ExitCode { get; set; }
    /// <summary>True when the run was killed for exceeding its memory.</summary>
    public bool OomKilled { get; set; }
}

/// <summary>One finished run, as the run history keeps it.</summary>
/// <param name="DefinitionId">The definition.</param>
/// <param name="CommandHash">The command's hash.</param>
/// <param name="NormalizedCommandHash">The normalised command's hash, when normalisation is on.</param>
/// <param name="AllocatedMemoryMb">Memory the run was given.</param>
/// <param name="PeakMemoryMb">Peak memory observed (for an OOM-killed run, what it had reached: the allocation).</param>
/// <param name="PeakCpuMillicores">Peak CPU observed.</param>
/// <param name="Duration">How long it ran.</param>
/// <param name="ExitCode">Its exit code.</param>
/// <param name="OomKilled">Whether it was killed for memory.</param>
/// <param name="FinishedAt">When it ended.</param>
public sealed record RunOutcome(string DefinitionId, string CommandHash, string? NormalizedCommandHash, int AllocatedMemoryMb, int PeakMemoryMb,
    int? PeakCpuMillicores, TimeSpan Duration, int? ExitCode, bool OomKilled, DateTimeOffset FinishedAt);

/// <summary>What an estimator is asked.</summary>
/// <param name="DefinitionId">The definition.</param>
/// <param name="CommandHash">The command's hash (never null here: jobs without one skip ARA).</param>
/// <param name="NormalizedCommandHash">The normalised command's hash, for the cold-start fallback.</param>
/// <param name="Definition">The definition, with its baseline.</param>
public sealed record EstimationRequest(string DefinitionId, string CommandHash, string? NormalizedCommandHash, JobDefinition Definition);

/// <summary>Sizes a job from the history of earlier runs. Replace it to bring your own model; the pipeline around it stays.</summary>
public interface IResourceEstimator
{
    /// <summary>An estimate, or null when there is no usable history (the baseline is then used).</summary>
    ValueTask<ResourceEstimate?> EstimateAsync(EstimationRequest request, CancellationToken cancellationToken = default);
}

/// <summary>Where run outcomes are kept for the estimator.</summary>
public interface IRunHistoryStore
{
    /// <summary>Records finished runs.</summary>
    ValueTask RecordAsync(IReadOnlyList<RunOutcome> outcomes, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes up to <paramref name="batchSize"/> of the runs that finished more than
    /// <paramref name="olderThan"/> ago on the store's clock (the worker host calls it with the
    /// estimator's window, so the history stays as large as the estimates can use), and returns how
    /// many it deleted.
    /// </summary>
    ValueTask<int> PruneAsync(TimeSpan olderThan, int batchSize, CancellationToken cancellationToken = default);
}
