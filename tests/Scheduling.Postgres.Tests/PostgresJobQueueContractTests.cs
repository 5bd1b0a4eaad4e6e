using Scheduling.Testing;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>The queue contract against PostgreSQL (a fresh schema per test, the test's fake clock).</summary>
public sealed class PostgresJobQueueContractTests(PostgresDatabaseFixture database) : JobQueueContractTests, IClassFixture<PostgresDatabaseFixture>
{
    protected override async Task<IJobQueue> CreateQueueAsync(JobQueueOptions rules) =>
        await database.NewQueueAsync(rules, Time);
}
