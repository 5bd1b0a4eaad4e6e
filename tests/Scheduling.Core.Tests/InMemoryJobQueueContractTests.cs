using Scheduling.QueueContract;

namespace Scheduling.Core.Tests;

/// <summary>The queue contract against the in-memory queue.</summary>
public sealed class InMemoryJobQueueContractTests : JobQueueContractTests
{
    protected override Task<IJobQueue> CreateStoreAsync(JobQueueOptions rules) =>
        Task.FromResult<IJobQueue>(new InMemoryJobQueue(rules, Time));
}
