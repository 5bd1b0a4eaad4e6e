using Scheduling.Testing;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>The queue contract against PostgreSQL (a fresh schema per test, the test's fake clock).</summary>
public sealed class PostgresJobQueueContractTests(PostgresDatabaseFixture database) : JobQueueContractTests, IClassFixture<PostgresDatabaseFixture>
{
    protected override async Task<IJobQueue> CreateQueueAsync(JobQueueOptions rules) =>
        await database.NewQueueAsync(rules, Time);

    /// <summary>The table's invariants: leases only on running jobs, attempts within bounds, one active holder per unique key.</summary>
    protected override async Task AssertConsistentAsync(IJobQueue queue)
    {
        var schema = ((PostgresJobQueue)queue).Schema;
        await using var check = database.DataSource.CreateCommand($"""
            SELECT
              (SELECT count(*) FROM "{schema}".jobs WHERE (state = 'running') <> (lease_token IS NOT NULL AND locked_by IS NOT NULL AND lease_expires_at IS NOT NULL)),
              (SELECT count(*) FROM "{schema}".jobs WHERE attempt < 0 OR attempt > max_attempts OR max_attempts < 1),
              (SELECT count(*) FROM "{schema}".jobs WHERE (state IN ('succeeded', 'cancelled', 'dead')) <> (finalized_at IS NOT NULL)),
              (SELECT count(*) - count(DISTINCT unique_key) FROM "{schema}".jobs WHERE unique_key IS NOT NULL AND NOT unique_any_state AND state IN ('available', 'running')),
              (SELECT count(*) FROM "{schema}".jobs WHERE command IS NOT NULL AND command <> '' AND command_hash IS DISTINCT FROM md5(command))
            """);
        await using var reader = await check.ExecuteReaderAsync();
        await reader.ReadAsync();
        for (var i = 0; i < reader.FieldCount; i++) Assert.Equal(0L, reader.GetInt64(i));
    }
}
