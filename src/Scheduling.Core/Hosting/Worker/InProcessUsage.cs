using System.Globalization;

namespace Scheduling.Hosting;

/// <summary>
/// The usage a host observes of its own process while a job runs, recorded for a sized job whose
/// handler reported none (<see cref="SchedulingOptions.ObserveInProcessUsage"/>). The process's measure
/// is the job's only when nothing else ran beside it, so an observation counts only for a job that
/// started alone on this host and saw no other start before it finished.
/// </summary>
internal sealed class InProcessUsage(IProcessUsageProbe probe)
{
    private readonly IProcessUsageProbe _probe = probe;
    private int _active;
    private long _starts;

    /// <summary>Begins a job's run; every job of the host comes through here, sized or not, so overlaps are seen.</summary>
    public Observation Begin(AcquiredJob job)
    {
        var alone = Interlocked.Increment(ref _active) == 1;
        var start = Interlocked.Increment(ref _starts);
        return new Observation(this, start, alone && job.Allocation is not null ? _probe.Begin() : null);
    }

    /// <summary>A run under observation; <see cref="Complete"/> (or dispose) when it ends.</summary>
    internal sealed class Observation(InProcessUsage owner, long start, ProcessMark? mark) : IDisposable
    {
        private bool _done;

        /// <summary>
        /// Ends the run and fills what <paramref name="usage"/> lacks from the observation, when it is the
        /// job's (it ran alone throughout) and the handler reported no memory. True when it filled anything.
        /// </summary>
        public bool Complete(ResourceUsage usage, TimeSpan elapsed)
        {
            var alone = Volatile.Read(ref owner._starts) == start; // read before leaving: a start after this one is seen
            Dispose();
            if (mark is null || !alone || usage.PeakMemoryMb is not null || usage.OomKilled) return false;
            if (owner._probe.End(mark, elapsed) is not { } observed) return false;
            usage.PeakMemoryMb = observed.PeakMemoryMb;
            usage.PeakCpuMillicores ??= observed.CpuMillicores;
            return true;
        }

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            Interlocked.Decrement(ref owner._active);
        }
    }
}

/// <summary>Where an observation of the process began.</summary>
/// <param name="ResidentKb">The resident set then, in kB.</param>
/// <param name="Cpu">The process's CPU time then.</param>
internal sealed record ProcessMark(long ResidentKb, TimeSpan Cpu);

/// <summary>What the process used over an observation.</summary>
/// <param name="PeakMemoryMb">Its peak resident set during the observation, in MB (at least 1).</param>
/// <param name="CpuMillicores">Its average CPU over the run, in millicores.</param>
internal sealed record ProcessUsage(int PeakMemoryMb, int CpuMillicores);

/// <summary>Reads the process's own resource use; the seam the host's tests replace.</summary>
internal interface IProcessUsageProbe
{
    /// <summary>Starts an observation (resetting the process's peak where the system allows); null when it cannot.</summary>
    ProcessMark? Begin();

    /// <summary>What the process used since <paramref name="mark"/>; null when it cannot tell.</summary>
    ProcessUsage? End(ProcessMark mark, TimeSpan elapsed);
}

/// <summary>
/// Linux's measure: <c>/proc/self/clear_refs</c> ("5") resets the peak resident set (VmHWM) to the
/// current one, so VmHWM at the end is the peak during the run. Where the reset is refused, or on
/// another system, it observes nothing.
/// </summary>
internal sealed class LinuxProcessProbe(string procSelf = "/proc/self") : IProcessUsageProbe
{
    /// <summary>The probe for this machine: Linux's, or one that observes nothing.</summary>
    public static IProcessUsageProbe ForThisSystem() => OperatingSystem.IsLinux() ? new LinuxProcessProbe() : NoProbe.Instance;

    public ProcessMark? Begin()
    {
        try
        {
            // Opened as it is, without truncation (a proc file refuses it); no buffering, so the write happens here.
            using (var reset = new FileStream(Path.Combine(procSelf, "clear_refs"), FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0))
                reset.Write("5"u8);
            return ReadKb("VmRSS:") is { } resident ? new ProcessMark(resident, Environment.CpuUsage.TotalTime) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public ProcessUsage? End(ProcessMark mark, TimeSpan elapsed)
    {
        long? peak;
        try { peak = ReadKb("VmHWM:"); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return null; }
        if (peak is not { } hwm) return null;
        var cpu = Environment.CpuUsage.TotalTime - mark.Cpu;
        var millicores = elapsed > TimeSpan.Zero ? (int)Math.Clamp(cpu.TotalMilliseconds * 1000 / elapsed.TotalMilliseconds, 0, int.MaxValue) : 0;
        // The whole process's peak, its runtime included: the rise over the start would undercount a job
        // that reuses memory the process already held (freed but still resident), and an undercount OOMs.
        return new ProcessUsage((int)Math.Clamp(hwm / 1024, 1, int.MaxValue), millicores);
    }

    private long? ReadKb(string field)
    {
        foreach (var line in File.ReadLines(Path.Combine(procSelf, "status")))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            var parts = line[field.Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries); // "\t  123456 kB"
            return long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var kb) ? kb : null;
        }

        return null;
    }
}

/// <summary>Observes nothing (systems without a per-run peak).</summary>
internal sealed class NoProbe : IProcessUsageProbe
{
    public static readonly NoProbe Instance = new();

    public ProcessMark? Begin() => null;

    public ProcessUsage? End(ProcessMark mark, TimeSpan elapsed) => null;
}
