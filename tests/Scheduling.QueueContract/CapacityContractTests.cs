using Xunit;

namespace Scheduling.QueueContract;

/// <summary>Capacity-aware claims: a host that declares its resources takes only what fits, in queue order.</summary>
public abstract partial class JobQueueContractTests
{
    private static JobRequest Sized(int memoryMb, int cpuMillicores = 500, int gpus = 0, string queue = JobRequest.DefaultQueue) =>
        new("k") { Queue = queue, Command = $"run {memoryMb}", Definition = new JobDefinition($"d{memoryMb}", memoryMb, cpuMillicores, gpus) };

    private static AcquireRequest Holding(AcquireRequest request, ResourceCapacity capacity, ResourceCapacity? available = null) =>
        request with { Capacity = capacity, Available = available };

    [Fact]
    public async Task A_claim_with_a_capacity_takes_the_run_in_queue_order_that_fits_and_leaves_jobs_too_large_for_the_host()
    {
        var queue = await CreateQueueAsync();
        var ids = (await queue.EnqueueManyAsync([Sized(30_000), Sized(3_000), Sized(2_000), Sized(500), Sized(1_000), Sized(100)])).Select(r => r.JobId).ToArray();
        var small = new ResourceCapacity { MemoryMb = 4_096 };

        // A 4 GB host leaves the 30 GB job to others; 3,000 fits, 3,000 + 2,000 does not.
        var first = await queue.AcquireAsync(Holding(Take(10), small));
        Assert.Equal([ids[1]], first.Select(j => j.Id));
        Assert.Equal(3_000, first[0].Allocation!.MemoryMb);

        // With that job held, 1,096 MB are free: the 2,000 MB job at the head is not passed by the smaller ones behind it.
        Assert.Empty(await queue.AcquireAsync(Holding(Take(10), small, new ResourceCapacity { MemoryMb = 1_096 })));

        // All free again: 2,000 + 500 + 1,000 fit, + 100 would too but CPU (4 x 500 > 1,500) stops the run.
        var next = await queue.AcquireAsync(Holding(Take(10), small with { CpuMillicores = 1_500 }));
        Assert.Equal(ids[2..5], next.Select(j => j.Id));

        // A 64 GB host takes the large job, and with no capacity declared the rest goes as before.
        Assert.Equal([ids[0]], (await queue.AcquireAsync(Holding(Take(1), new ResourceCapacity { MemoryMb = 65_536 }))).Select(j => j.Id));
        Assert.Equal([ids[5]], (await queue.AcquireAsync(Take(10))).Select(j => j.Id));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Capacity_counts_gpus_and_cpu_and_jobs_without_an_allocation_need_nothing()
    {
        var queue = await CreateQueueAsync();
        var ids = (await queue.EnqueueManyAsync([Sized(100, gpus: 1), new JobRequest("k"), Sized(100, gpus: 1), Sized(100, cpuMillicores: 4_000)])).Select(r => r.JobId).ToArray();
        var oneGpu = new ResourceCapacity { Gpus = 1, CpuMillicores = 2_000 };

        // One GPU: the first GPU job and the unsized job; the second GPU job would make two. The 4-core job never fits 2 cores.
        Assert.Equal(ids[..2], (await queue.AcquireAsync(Holding(Take(10), oneGpu))).Select(j => j.Id));
        Assert.Equal([ids[2]], (await queue.AcquireAsync(Holding(Take(10), oneGpu))).Select(j => j.Id));
        Assert.Empty(await queue.AcquireAsync(Holding(Take(10), oneGpu)));
        Assert.Equal([ids[3]], (await queue.AcquireAsync(Take(10))).Select(j => j.Id));
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task Capacity_applies_to_a_claim_over_several_queues()
    {
        var queue = await CreateQueueAsync();
        var mail = (await queue.EnqueueManyAsync([Sized(1_000, queue: "mail"), Sized(1_000, queue: "mail")])).Select(r => r.JobId).ToArray();
        var sms = (await queue.EnqueueManyAsync([Sized(8_000, queue: "sms"), Sized(1_000, queue: "sms")])).Select(r => r.JobId).ToArray();
        var request = new AcquireRequest([new QueueShare("mail", 1), new QueueShare("sms", 1)], "w1", 10, Lease);

        var taken = await queue.AcquireAsync(Holding(request, new ResourceCapacity { MemoryMb = 2_500 }));

        // The 8 GB job never fits; of the others, in acquisition order, two of 1,000 fit in 2,500.
        Assert.Equal(2, taken.Count);
        Assert.DoesNotContain(sms[0], taken.Select(j => j.Id));
        Assert.Subset(mail.Concat(sms[1..]).ToHashSet(), taken.Select(j => j.Id).ToHashSet());
        await AssertConsistentAsync(queue);
    }

    [Fact]
    public async Task A_capacity_claim_is_refused_with_the_argument_that_is_wrong()
    {
        var queue = await CreateQueueAsync();
        await queue.EnqueueAsync(Sized(100));

        var noCapacity = await Assert.ThrowsAsync<ArgumentException>(() => queue.AcquireAsync(Take() with { Available = new ResourceCapacity { MemoryMb = 1 } }).AsTask());
        Assert.Equal("request.Available", noCapacity.ParamName);
        var negative = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.AcquireAsync(Holding(Take(), new ResourceCapacity { MemoryMb = -1 })).AsTask());
        Assert.Equal("request.Capacity.MemoryMb", negative.ParamName);
        var negativeFree = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.AcquireAsync(Holding(Take(), new ResourceCapacity(), new ResourceCapacity { Gpus = -2 })).AsTask());
        Assert.Equal("request.Available.Gpus", negativeFree.ParamName);
        Assert.Single(await queue.AcquireAsync(Take())); // nothing was taken by the refused claims
    }
}
