using System.Globalization;

namespace Scheduling.Hosting;

/// <summary>
/// The capacity a host declared, and its claims against it. Every fetch loop of the host claims
/// through here: with no capacity, straight through (today's path, no lock); with one, one claim
/// at a time, each told what the jobs the host holds (buffered or running) leave free, and each
/// holding its jobs before the next claim reads the free amount, so two loops never spend it twice.
/// </summary>
internal sealed class HostCapacity(ResourceCapacity? total, RunningJobs running) : IDisposable
{
    private readonly SemaphoreSlim _claims = new(1, 1);

    /// <summary>What the host has; null when it declared nothing.</summary>
    public ResourceCapacity? Total { get; } = total;

    /// <summary>
    /// Runs <paramref name="claim"/> with <paramref name="request"/> told the host's capacity and what
    /// is free, then <paramref name="hold"/> on its result (which must add the jobs to the running set).
    /// </summary>
    public async Task<T> ClaimAsync<T>(AcquireRequest request, Func<AcquireRequest, Task<T>> claim, Action<T> hold)
    {
        if (Total is null)
        {
            var result = await claim(request).ConfigureAwait(false);
            hold(result);
            return result;
        }

        await _claims.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            var free = ResourceCapacity.Remaining(Total, running.Snapshot().Select(j => j.Job.Allocation));
            var result = await claim(request with { Capacity = Total, Available = free }).ConfigureAwait(false);
            hold(result);
            return result;
        }
        finally
        {
            _claims.Release();
        }
    }

    public void Dispose() => _claims.Dispose();

    /// <summary>
    /// The capacity to declare from <paramref name="options"/>: <see cref="SchedulingOptions.Capacity"/>,
    /// with the amounts it leaves unset read from the container's cgroup (v2) under <paramref name="cgroupRoot"/>
    /// when <see cref="SchedulingOptions.CapacityFromContainer"/> is set.
    /// </summary>
    public static ResourceCapacity? Declared(SchedulingOptions options, string cgroupRoot = "/sys/fs/cgroup")
    {
        if (!options.CapacityFromContainer) return options.Capacity;
        var given = options.Capacity ?? new ResourceCapacity();
        return given with
        {
            MemoryMb = given.MemoryMb ?? ContainerMemoryMb(cgroupRoot),
            CpuMillicores = given.CpuMillicores ?? ContainerCpuMillicores(cgroupRoot),
        };
    }

    /// <summary><c>memory.max</c>: bytes, or "max" for no limit (null then, and when there is no such file).</summary>
    internal static int? ContainerMemoryMb(string cgroupRoot)
    {
        var text = ReadFirstLine(Path.Combine(cgroupRoot, "memory.max"));
        if (text is null or "max") return null;
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes)
            ? (int)Math.Min(int.MaxValue, bytes / (1024 * 1024))
            : throw new FormatException($"{Path.Combine(cgroupRoot, "memory.max")} holds '{text}', neither a byte count nor 'max'.");
    }

    /// <summary><c>cpu.max</c>: "quota period" in microseconds, or "max period" for no limit.</summary>
    internal static int? ContainerCpuMillicores(string cgroupRoot)
    {
        var text = ReadFirstLine(Path.Combine(cgroupRoot, "cpu.max"));
        if (text is null) return null;
        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts is ["max", ..]) return null;
        if (parts.Length == 2
            && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var quota)
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var period) && period > 0)
            return (int)Math.Min(int.MaxValue, quota * 1000 / period);
        throw new FormatException($"{Path.Combine(cgroupRoot, "cpu.max")} holds '{text}', not '<quota> <period>' or 'max <period>'.");
    }

    private static string? ReadFirstLine(string path) => File.Exists(path) ? File.ReadLines(path).FirstOrDefault()?.Trim() : null;
}
