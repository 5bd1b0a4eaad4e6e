using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>The queue contract against PostgreSQL (a fresh schema per test, the test's fake clock).</summary>
public sealed class PostgresJobQueueContractTests(PostgresDatabaseFixture database) : JobQueueContractTests, IClassFixture<PostgresDatabaseFixture>
{
    protected override async Task<IJobQueue> CreateStoreAsync(JobQueueOptions rules) =>
        await database.NewQueueAsync(rules, Time);

    /// <summary>Each run creates and migrates a schema: fewer runs keep the suite quick.</summary>
    protected override int PropertyRuns => 40;

    /// <summary>
    /// The table's invariants: leases only on running jobs, attempts within bounds, one active holder
    /// per unique key; a waiting job counts exactly its unresolved edges, no finished parent has an
    /// unresolved edge (children are settled in the transaction that finishes the parent), and
    /// effective priority is never below a job's own; every active keyed job's key is registered for
    /// the limited claim, and no key runs more than its queue's cap.
    /// </summary>
    protected override async Task AssertConsistentAsync(StoreUnderTest queue)
    {
        var schema = ((PostgresJobQueue)queue.Inner).Schema;
        await using var check = database.DataSource.CreateCommand($"""
            SELECT
              (SELECT count(*) FROM "{schema}".jobs WHERE (state = 'running') <> (lease_token IS NOT NULL AND locked_by IS NOT NULL AND lease_expires_at IS NOT NULL)),
              (SELECT count(*) FROM "{schema}".jobs WHERE attempt < 0 OR attempt > max_attempts OR max_attempts < 1),
              (SELECT count(*) FROM "{schema}".jobs WHERE (state IN ('succeeded', 'cancelled', 'dead', 'expired')) <> (finalized_at IS NOT NULL)),
              (SELECT count(*) - count(DISTINCT unique_key) FROM "{schema}".jobs WHERE unique_key IS NOT NULL AND NOT unique_any_state AND state IN ('waiting', 'available', 'running')),
              (SELECT count(*) FROM "{schema}".jobs WHERE command IS NOT NULL AND command <> '' AND command_hash IS DISTINCT FROM md5(command)),
              (SELECT count(*) FROM "{schema}".jobs j WHERE j.state = 'waiting' AND (j.parents_pending < 1 OR j.parents_pending <>
                  (SELECT count(*) FROM "{schema}".job_dependencies d WHERE d.child_id = j.id AND NOT d.resolved)
                  -- a batch callback waits for its open batch as its one parent
                  + (SELECT count(*) FROM "{schema}".batches b WHERE b.settled_at IS NULL AND j.id IN (b.on_success_job_id, b.on_complete_job_id)))),
              (SELECT count(*) FROM "{schema}".job_dependencies d JOIN "{schema}".jobs p ON p.id = d.parent_id
                  WHERE NOT d.resolved AND p.state IN ('succeeded', 'cancelled', 'dead', 'expired')),
              (SELECT count(*) FROM "{schema}".jobs WHERE effective_priority < priority),
              (SELECT count(*) FROM "{schema}".jobs j WHERE j.partition_key IS NOT NULL AND j.state IN ('waiting', 'available', 'running')
                  AND NOT EXISTS (SELECT 1 FROM "{schema}".queue_keys k WHERE k.queue = j.queue AND k.partition_key = j.partition_key)),
              (SELECT count(*) FROM (SELECT 1 FROM "{schema}".jobs j JOIN "{schema}".queues q ON q.queue = j.queue
                  WHERE j.state = 'running' AND j.partition_key IS NOT NULL AND q.key_concurrency IS NOT NULL
                  GROUP BY j.queue, j.partition_key, q.key_concurrency HAVING count(*) > q.key_concurrency) AS over_cap)
            """);
        await using var reader = await check.ExecuteReaderAsync();
        await reader.ReadAsync();
        for (var i = 0; i < reader.FieldCount; i++) Assert.Equal(0L, reader.GetInt64(i));
    }
}
