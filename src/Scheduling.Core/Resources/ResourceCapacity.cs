namespace Scheduling;

/// <summary>
/// Amounts of memory, CPU and GPUs: what a worker host has (<see cref="SchedulingOptions.Capacity"/>),
/// or what of it is free for a claim (<see cref="AcquireRequest.Available"/>). A null amount is unlimited.
/// A job's need is its <see cref="ResourceAllocation"/>; a job with none needs nothing.
/// </summary>
/// <param name="MemoryMb">Memory in MB (null: unlimited).</param>
/// <param name="CpuMillicores">CPU in millicores (null: unlimited).</param>
/// <param name="Gpus">GPUs (null: unlimited).</param>
public sealed record ResourceCapacity(int? MemoryMb = null, int? CpuMillicores = null, int? Gpus = null)
{
    /// <summary>Whether a job given <paramref name="allocation"/> fits in these amounts on its own.</summary>
    /// <param name="allocation">The job's allocation; null needs nothing.</param>
    /// <returns>True when every amount the job needs is within this capacity.</returns>
    public bool Fits(ResourceAllocation? allocation) =>
        allocation is null
        || (Within(allocation.MemoryMb, MemoryMb) && Within(allocation.CpuMillicores, CpuMillicores) && Within(allocation.Gpus, Gpus));

    private static bool Within(long need, int? amount) => amount is not { } limit || need <= limit;

    /// <summary>What is left of <paramref name="capacity"/> once <paramref name="held"/> are taken out (never below zero).</summary>
    internal static ResourceCapacity Remaining(ResourceCapacity capacity, IEnumerable<ResourceAllocation?> held)
    {
        long memory = 0, cpu = 0, gpus = 0;
        foreach (var allocation in held)
        {
            if (allocation is null) continue;
            memory += allocation.MemoryMb;
            cpu += allocation.CpuMillicores;
            gpus += allocation.Gpus;
        }

        return new ResourceCapacity
        {
            MemoryMb = Less(capacity.MemoryMb, memory),
            CpuMillicores = Less(capacity.CpuMillicores, cpu),
            Gpus = Less(capacity.Gpus, gpus),
        };

        static int? Less(int? amount, long used) => amount is { } a ? (int)Math.Max(0, a - used) : null;
    }

    /// <summary>
    /// The claim's rule, in one place (the PostgreSQL claim is its twin, <c>AcquireJobs</c>): of the
    /// due jobs in acquisition order, with those that could never fit the host already left out, the
    /// longest prefix whose allocations together fit <paramref name="available"/>. A prefix, not the
    /// best packing: a large job at the head of the queue is not passed over by smaller ones behind
    /// it, so it starts as soon as the host has room for it.
    /// </summary>
    /// <returns>How many of <paramref name="inOrder"/> to take.</returns>
    internal static int FittingPrefix(IReadOnlyList<ResourceAllocation?> inOrder, ResourceCapacity available)
    {
        long memory = 0, cpu = 0, gpus = 0;
        for (var i = 0; i < inOrder.Count; i++)
        {
            if (inOrder[i] is { } a)
            {
                memory += a.MemoryMb;
                cpu += a.CpuMillicores;
                gpus += a.Gpus;
            }

            if (!(Within(memory, available.MemoryMb) && Within(cpu, available.CpuMillicores) && Within(gpus, available.Gpus))) return i;
        }

        return inOrder.Count;
    }

    /// <summary>Checks that every amount is zero or more, naming <paramref name="name"/> in the error.</summary>
    internal void Validate(string name)
    {
        if (MemoryMb < 0) throw new ArgumentOutOfRangeException($"{name}.MemoryMb", MemoryMb, "A capacity cannot be negative.");
        if (CpuMillicores < 0) throw new ArgumentOutOfRangeException($"{name}.CpuMillicores", CpuMillicores, "A capacity cannot be negative.");
        if (Gpus < 0) throw new ArgumentOutOfRangeException($"{name}.Gpus", Gpus, "A capacity cannot be negative.");
    }
}
