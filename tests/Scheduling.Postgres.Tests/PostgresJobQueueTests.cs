using Npgsql;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>What only the PostgreSQL queue does: transactions, COPY, NOTIFY, migrations, the database clock, concurrency.</summary>
public sealed class PostgresJobQueueTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Job_enqueued_in_a_transaction_is_visible_only_if_it_commits()
    {
        var queue = await database.NewQueueAsync();
        await using (var connection = await database.DataSource.OpenConnectionAsync())
        {
            await using var rolledBack = await connection.BeginTransactionAsync();
            var lost = await queue.EnqueueAsync(new JobRequest("k"), rolledBack);
            await queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k")], rolledBack);
            Assert.Empty(await queue.AcquireAsync(new AcquireRequest("default", "w", 10, Lease))); // not visible before commit
            await rolledBack.RollbackAsync();
            Assert.Null(await queue.GetJobAsync(lost.JobId));
        }

        await using (var connection = await database.DataSource.OpenConnectionAsync())
        {
            await using var committed = await connection.BeginTransactionAsync();
            var kept = await queue.EnqueueAsync(new JobRequest("k"), committed);
            await committed.CommitAsync();
            Assert.Equal(kept.JobId, Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w", 10, Lease))).Id);
        }
    }

    [Fact]
    public async Task A_batch_refused_for_a_duplicate_key_leaves_none_of_its_jobs_in_the_callers_transaction_and_the_rest_of_it_intact()
    {
        var queue = await database.NewQueueAsync();
        var taken = await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "report:1" });
        await using var connection = await database.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var own = await queue.EnqueueAsync(new JobRequest("mine"), transaction); // the caller's earlier work

        var refused = await Assert.ThrowsAsync<DuplicateJobException>(async () => await queue.EnqueueManyAsync(
            [new JobRequest("batch") { UniqueKey = "report:2" }, new JobRequest("batch"), new JobRequest("batch") { UniqueKey = "report:1", OnUniqueConflict = UniqueKeyConflict.Reject }],
            transaction));
        var after = await queue.EnqueueAsync(new JobRequest("mine"), transaction); // the transaction is still usable
        await transaction.CommitAsync();

        Assert.Equal(taken.JobId, refused.ExistingJobId);
        await using var kinds = database.DataSource.CreateCommand($"SELECT kind, count(*) FROM \"{queue.Schema}\".jobs GROUP BY kind ORDER BY kind");
        var counts = new Dictionary<string, long>();
        await using (var reader = await kinds.ExecuteReaderAsync())
            while (await reader.ReadAsync()) counts[reader.GetString(0)] = reader.GetInt64(1);
        Assert.Equal(new Dictionary<string, long> { ["k"] = 1, ["mine"] = 2 }, counts);
        Assert.NotNull(await queue.GetJobAsync(own.JobId));
        Assert.NotNull(await queue.GetJobAsync(after.JobId));
    }

    [Fact]
    public async Task Concurrent_batches_naming_the_same_unique_keys_in_different_orders_never_deadlock_and_agree_on_each_job()
    {
        // Each batch inserts its keys one after another in one transaction: in opposite orders, each
        // would hold a key the other waits for (PostgreSQL aborts one with a deadlock after a second).
        var queue = await database.NewQueueAsync();
        for (var round = 0; round < 8; round++)
        {
            var keys = Enumerable.Range(0, 60).Select(i => $"r{round}-k{i}").ToArray();
            var orders = new[] { keys, keys.Reverse().ToArray(), keys.OrderBy(k => k.GetHashCode()).ToArray() };
            var calls = orders.Select(order => Task.Run(async () => await queue.EnqueueManyAsync(order.Select(k => new JobRequest("k") { UniqueKey = k }).ToArray()))).ToArray();
            var results = await Task.WhenAll(calls);

            var idsByKey = orders.Zip(results, (order, result) => order.Zip(result, (key, r) => (key, r.JobId)))
                .SelectMany(pairs => pairs).GroupBy(p => p.key).ToDictionary(g => g.Key, g => g.Select(p => p.JobId).Distinct().ToArray());
            Assert.All(idsByKey.Values, ids => Assert.Single(ids)); // every call names the one job of each key
            Assert.Equal(keys.Length, results.SelectMany(r => r).Count(r => r.Created));
        }

        Assert.Equal(8 * 60, await database.CountJobsAsync(queue.Schema, "true"));
    }

    [Fact]
    public async Task A_failure_waiting_behind_a_cancellation_request_is_applied_with_the_request_seen()
    {
        // Found by the concurrent property. The acknowledgement sends one row per value of the job's
        // cancellation flag; matched against the flag in the join, a request committing while the
        // statement waited for the row matched neither row, and the live lease's failure was lost.
        var queue = await database.NewQueueAsync(configure: o => o.AckLockTimeout = TimeSpan.FromMinutes(1));
        await queue.EnqueueAsync(new JobRequest("k"));
        var job = Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w", 1, Lease)));

        await using var connection = await database.DataSource.OpenConnectionAsync();
        await using var cancelling = await connection.BeginTransactionAsync();
        await using (var request = new NpgsqlCommand($"UPDATE \"{queue.Schema}\".jobs SET cancel_requested = true WHERE id = $1 AND state = 'running'", connection, cancelling))
        {
            request.Parameters.AddWithValue(job.Id); // what CancelAsync does to a running job, held open
            Assert.Equal(1, await request.ExecuteNonQueryAsync());
        }

        var failing = queue.AcknowledgeAsync([JobAck.Failure(job.Lease, "boom")]).AsTask();
        await Eventually.HoldsAsync(async () => await WaitingOnALockAsync() > 0, "the acknowledgement waits for the cancellation's row lock");
        await cancelling.CommitAsync();

        var result = Assert.Single(await failing);
        Assert.True(result.Applied);
        Assert.Equal(JobState.Cancelled, result.State); // a failure after a cancellation request is not retried
        Assert.Equal(JobState.Cancelled, (await queue.GetJobAsync(job.Id))!.State);
    }

    private async Task<long> WaitingOnALockAsync()
    {
        await using var waiting = database.DataSource.CreateCommand("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
        return (long)(await waiting.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task A_graph_enqueued_in_a_transaction_exists_only_if_it_commits()
    {
        var queue = await database.NewQueueAsync();
        var parent = await queue.EnqueueAsync(new JobRequest("parent"));
        JobRequest[] Graph() =>
        [
            new JobRequest("a") { LocalKey = "a", DependsOn = [parent.JobId] },
            new JobRequest("b") { DependsOn = [JobDependency.OnRequest("a")], Priority = 7 },
        ];

        await using (var connection = await database.DataSource.OpenConnectionAsync())
        {
            await using var rolledBack = await connection.BeginTransactionAsync();
            var lost = await queue.EnqueueManyAsync(Graph(), rolledBack);
            await rolledBack.RollbackAsync();
            Assert.Null(await queue.GetJobAsync(lost[0].JobId));
            var untouched = (await queue.GetJobAsync(parent.JobId))!;
            Assert.Empty(untouched.Children);
            Assert.Equal(0, untouched.EffectivePriority); // the boost went with the transaction
        }

        await using (var connection = await database.DataSource.OpenConnectionAsync())
        {
            await using var committed = await connection.BeginTransactionAsync();
            var kept = await queue.EnqueueManyAsync(Graph(), committed);
            await committed.CommitAsync();
            var info = (await queue.GetJobAsync(parent.JobId))!;
            Assert.Equal([new JobLink(kept[0].JobId, JobState.Waiting)], info.Children);
            Assert.Equal(7, info.EffectivePriority);
        }
    }

    [Fact]
    public async Task Bulk_enqueue_uses_binary_copy_and_keeps_request_order()
    {
        var queue = await database.NewQueueAsync();
        var requests = Enumerable.Range(0, 5000).Select(i => new JobRequest("bulk", new { N = i }) { Priority = i % 3 == 0 ? 1 : 0 }).ToArray();

        var results = await queue.EnqueueManyAsync(requests);

        Assert.Equal(5000, results.Count);
        Assert.Equal(results.Select(r => r.JobId).Order(), results.Select(r => r.JobId));
        var first = await queue.AcquireAsync(new AcquireRequest("default", "w", 3, Lease));
        Assert.Equal([results[0].JobId, results[3].JobId, results[6].JobId], first.Select(j => j.Id));
        Assert.Contains("\"n\": 3", first[1].PayloadJson, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Notification_is_sent_when_the_enqueueing_transaction_commits()
    {
        var queue = await database.NewQueueAsync();
        await using var listener = await database.DataSource.OpenConnectionAsync();
        var received = new List<string>();
        listener.Notification += (_, e) => { lock (received) received.Add($"{e.Channel}:{e.Payload}"); };
        await using (var listen = new NpgsqlCommand($"LISTEN \"{queue.NotificationChannel}\"", listener)) await listen.ExecuteNonQueryAsync();

        await using (var connection = await database.DataSource.OpenConnectionAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await queue.EnqueueAsync(new JobRequest("k") { Queue = "mail" }, transaction);
            Assert.False(await listener.WaitAsync(TimeSpan.FromMilliseconds(200))); // nothing before commit
            await transaction.CommitAsync();
        }

        Assert.True(await listener.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal([$"{queue.NotificationChannel}:mail"], received);
    }

    [Fact]
    public async Task Enqueues_one_at_a_time_each_carry_their_own_notify()
    {
        var queue = await database.NewQueueAsync();
        await using var listener = await database.DataSource.OpenConnectionAsync();
        var received = new List<string>();
        listener.Notification += (_, e) => { lock (received) received.Add(e.Payload); };
        await using (var listen = new NpgsqlCommand($"LISTEN \"{queue.NotificationChannel}\"", listener)) await listen.ExecuteNonQueryAsync();

        await queue.EnqueueAsync(new JobRequest("k") { Queue = "mail" });
        await queue.EnqueueManyAsync([new JobRequest("k") { Queue = "mail" }, new JobRequest("k") { Queue = "sms" }]);
        await queue.EnqueueManyAsync(Enumerable.Range(0, 300).Select(_ => new JobRequest("k") { Queue = "bulk" }).ToArray()); // by COPY
        await queue.EnqueueAsync(new JobRequest("k") { Queue = "mail" });

        // Each write began with no notify in flight, so each carried one, delivered at its commit:
        // a round trip on the listening connection brings every one committed before it.
        await using (var ping = new NpgsqlCommand("SELECT 1", listener)) await ping.ExecuteScalarAsync();
        lock (received) Assert.Equal(["mail", "mail", "sms", "bulk", "mail"], received);
        Assert.Equal(0, queue.Wakes!.Tracked);
    }

    [Fact]
    public async Task Concurrent_enqueues_send_at_most_one_notify_per_job_and_leave_none_owed()
    {
        var queue = await database.NewQueueAsync();
        await using var listener = await database.DataSource.OpenConnectionAsync();
        var received = 0;
        listener.Notification += (_, _) => Interlocked.Increment(ref received);
        await using (var listen = new NpgsqlCommand($"LISTEN \"{queue.NotificationChannel}\"", listener)) await listen.ExecuteNonQueryAsync();

        const int jobs = 400;
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) < jobs) await queue.EnqueueAsync(new JobRequest("k"));
        })));

        // The notifies owed after the last commits are sent on their own, after them.
        await Eventually.HoldsAsync(() => Task.FromResult(queue.Wakes!.Tracked == 0), "every notify owed is sent");
        await using (var ping = new NpgsqlCommand("SELECT 1", listener)) await ping.ExecuteScalarAsync();
        Assert.InRange(Volatile.Read(ref received), 1, jobs);
        Assert.Equal(0, queue.Wakes!.FailedSends);
    }

    [Fact]
    public async Task Migrations_are_idempotent_and_safe_to_run_from_many_hosts_at_once()
    {
        var schema = database.NewSchema();
        var queues = Enumerable.Range(0, 6).Select(_ => new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = schema })).ToArray();

        var applied = await Task.WhenAll(queues.Select(q => q.MigrateAsync()));

        Assert.Equal(1, applied.Count(a => a.Count > 0)); // exactly one host applied them
        Assert.Equal(Enumerable.Range(1, PostgresMigrator.All.Count), applied.Single(a => a.Count > 0));
        Assert.Empty(await queues[0].MigrateAsync());
        await using var command = database.DataSource.CreateCommand($"SELECT max(version) FROM \"{schema}\".schema_migrations");
        Assert.Equal(PostgresMigrator.LatestVersion, (int)(await command.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task A_library_refuses_a_schema_it_cannot_serve_and_serves_a_newer_one_that_says_it_can()
    {
        var schema = database.NewSchema();
        await new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = schema }).MigrateAsync();
        async Task ExecAsync(string sql)
        {
            await using var command = database.DataSource.CreateCommand(sql.Replace("{schema}", $"\"{schema}\"", StringComparison.Ordinal));
            await command.ExecuteNonQueryAsync();
        }

        // A newer library migrated it and says older ones may still serve it (a rolling deploy).
        var newer = PostgresMigrator.LatestVersion + 1;
        await ExecAsync($"INSERT INTO {{schema}}.schema_migrations (version, name) VALUES ({newer}, 'from_the_future')");
        await ExecAsync("UPDATE {schema}.schema_functions SET checksum = 'the newer body'");
        var serving = new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = schema });
        Assert.True((await serving.EnqueueAsync(new JobRequest("k"))).JobId > 0);
        await using (var functions = database.DataSource.CreateCommand($"SELECT count(*) FROM \"{schema}\".schema_functions WHERE checksum <> 'the newer body'"))
            Assert.Equal(0L, await functions.ExecuteScalarAsync()); // its older function bodies were not put back

        // A newer library that older ones cannot serve: every host refuses, migrating or not, naming both versions.
        await ExecAsync($"UPDATE {{schema}}.schema_compatibility SET oldest_library_migration = {newer}");
        foreach (var migrates in new[] { true, false })
        {
            var refused = new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = schema, ApplyMigrations = migrates });
            var error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await refused.EnqueueAsync(new JobRequest("k")));
            Assert.Contains($"needs a library that knows migration {newer} or later; this version of Scheduling.Postgres knows {PostgresMigrator.LatestVersion}", error.Message, StringComparison.Ordinal);
        }

        // A host that does not migrate refuses a schema with its migrations pending.
        var fresh = database.NewSchema();
        await using (var create = database.DataSource.CreateCommand($"CREATE SCHEMA \"{fresh}\""))
            await create.ExecuteNonQueryAsync();
        var early = new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = fresh, ApplyMigrations = false });
        var pending = await Assert.ThrowsAsync<InvalidOperationException>(async () => await early.EnqueueAsync(new JobRequest("k")));
        Assert.Contains($"is at migration 0; this version of Scheduling.Postgres needs {PostgresMigrator.LatestVersion}", pending.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Queue_migrates_itself_on_first_use()
    {
        var queue = new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = database.NewSchema() });
        var id = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        Assert.Equal(JobState.Available, (await queue.GetJobAsync(id))!.State);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Upper")]
    [InlineData("1starts_with_digit")]
    [InlineData("has space")]
    [InlineData("x\"; DROP TABLE jobs; --")]
    [InlineData("scheduling.jobs")]
    [InlineData("pg_catalog")]
    [InlineData("a_schema_name_that_is_longer_than_fifty_characters_long")]
    public void Schema_name_that_is_not_a_plain_identifier_is_rejected(string schema)
    {
        var ex = Assert.Throws<ArgumentException>(() => new PostgresJobQueue(database.DataSource, new PostgresQueueOptions { Schema = schema }));
        Assert.Equal("options.Schema", ex.ParamName);
    }

    [Fact]
    public async Task Database_clock_drives_due_times_and_leases_by_default()
    {
        var queue = await database.NewQueueAsync();
        var due = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        await queue.EnqueueAsync(new JobRequest("k") { RunAt = DateTimeOffset.UtcNow.AddHours(1) });
        await using var clock = database.DataSource.CreateCommand("SELECT now()");
        var before = (DateTime)(await clock.ExecuteScalarAsync())!;

        var job = Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w", 10, Lease)));

        Assert.Equal(due, job.Id);
        Assert.InRange(job.LeaseExpiresAt.UtcDateTime, before + Lease, before + Lease + TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task Acquisition_uses_the_fetch_index_without_scanning_or_sorting_the_table()
    {
        var queue = await database.NewQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 20_000).Select(i => new JobRequest("k") { Queue = i % 2 == 0 ? "a" : "b", Priority = i % 5 }).ToArray());
        await using (var analyze = database.DataSource.CreateCommand($"ANALYZE \"{queue.Schema}\".jobs")) await analyze.ExecuteNonQueryAsync();
        var sql = new Scheduling.Postgres.Statements.AcquireJobs(new PostgresSchema(queue.Schema, "schema"));

        // The statements the queue runs, single queue and weighted queues, with real parameters.
        var single = await ExplainAsync(sql.Single, Text("a"), 10, Text("w"), null, TimeSpan.FromMinutes(1));
        var shared = await ExplainAsync(sql.Shared, new[] { "a", "b" }, new[] { 7, 3 }, Text("w"), null, TimeSpan.FromMinutes(1), 10, new[] { 3, 1 });

        foreach (var plan in new[] { single, shared })
        {
            Assert.Contains(plan, line => line.Contains("jobs_fetch_idx", StringComparison.Ordinal));
            Assert.DoesNotContain(plan, line => line.Contains("Seq Scan on jobs", StringComparison.Ordinal));
            // The only sorts allowed are of the few rows already picked, never of the queue.
            Assert.DoesNotContain(plan, line => line.Contains("Sort Key: jobs.", StringComparison.Ordinal) || line.Contains("Sort Key: priority", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Acknowledgements_and_heartbeats_find_their_jobs_by_primary_key_however_many_are_running()
    {
        var queue = await database.NewQueueAsync();
        await queue.EnqueueManyAsync(Enumerable.Range(0, 30_000).Select(_ => new JobRequest("k")).ToArray());
        var running = await queue.AcquireAsync(new AcquireRequest("default", "w", 4_000, Lease));
        await using (var analyze = database.DataSource.CreateCommand($"ANALYZE \"{queue.Schema}\".jobs")) await analyze.ExecuteNonQueryAsync();
        var sql = new Scheduling.Postgres.Statements.Heartbeat(new PostgresSchema(queue.Schema, "schema"));
        var ids = running.Take(100).Select(j => j.Id).ToArray();
        var tokens = running.Take(100).Select(j => j.Lease.Token).ToArray();

        // Joining the acknowledged ids against every running job costs O(running) per batch.
        var now = DateTimeOffset.UtcNow;
        var succeed = new Scheduling.Postgres.Statements.SetStatesIfRunning(new PostgresSchema(queue.Schema, "schema")).Command(
            running.Take(100).Select(j => new Scheduling.Postgres.Statements.TransitionRow(j.Id, j.Lease.Token, null, JobTransitions.Acknowledge(
                new JobFacts(JobState.Running, 1, 1, false), JobAckKind.Succeeded, null, true, now, TimeSpan.Zero))).ToArray(),
            now, null, 20, "channel");
        var finish = await ExplainAsync(succeed.CommandText, succeed.Parameters.Select(p => (object?)p.Clone()).ToArray());
        var heartbeat = await ExplainAsync(sql.Sql, Text("w"), TimeSpan.FromMinutes(1), null, ids, tokens);
        foreach (var plan in new[] { finish, heartbeat })
        {
            Assert.True(plan.Any(line => line.Contains("jobs_pkey", StringComparison.Ordinal)), string.Join("\n", plan));
            Assert.DoesNotContain(plan, line => line.Contains("jobs_lease_idx", StringComparison.Ordinal) || line.Contains("Seq Scan on jobs", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task The_database_refuses_a_lease_token_on_a_job_that_is_not_running()
    {
        var queue = await database.NewQueueAsync();
        var id = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        await using var corrupt = database.DataSource.CreateCommand($"UPDATE \"{queue.Schema}\".jobs SET lease_token = gen_random_uuid() WHERE id = $1");
        corrupt.Parameters.AddWithValue(id);

        var refused = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => corrupt.ExecuteNonQueryAsync());

        Assert.Equal("jobs_lease_token_check", refused.ConstraintName);
    }

    private static NpgsqlTypes.NpgsqlDbType TextType() => NpgsqlTypes.NpgsqlDbType.Text;
    private static Npgsql.NpgsqlParameter Text(string value) => new() { Value = value, NpgsqlDbType = TextType() };

    private async Task<List<string>> ExplainAsync(string statement, params object?[] values)
    {
        await using var explain = database.DataSource.CreateCommand("EXPLAIN " + statement);
        foreach (var value in values)
        {
            explain.Parameters.Add(value switch
            {
                Npgsql.NpgsqlParameter p => p,
                null => new Npgsql.NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz },
                TimeSpan t => new Npgsql.NpgsqlParameter { Value = t, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Interval },
                _ => new Npgsql.NpgsqlParameter { Value = value },
            });
        }

        var plan = new List<string>();
        await using var reader = await explain.ExecuteReaderAsync();
        while (await reader.ReadAsync()) plan.Add(reader.GetString(0));
        return plan;
    }

    [Fact]
    public async Task A_child_enqueued_while_its_parent_completes_is_never_left_waiting()
    {
        var queue = await database.NewQueueAsync();
        for (var round = 0; round < 150; round++)
        {
            var parent = await queue.EnqueueAsync(new JobRequest("parent"));
            var lease = Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w", 1, Lease))).Lease;
            var failing = round % 3 == 0; // a failure must cancel the child just as surely

            var enqueue = Task.Run(async () => await queue.EnqueueAsync(new JobRequest("child") { DependsOn = [parent.JobId] }));
            var finish = Task.Run(async () => failing ? await queue.FailAsync(lease, "boom", retryable: false) : await queue.CompleteAsync(lease));
            await Task.WhenAll(enqueue, finish);

            var child = (await queue.GetJobAsync((await enqueue).JobId))!;
            Assert.Equal(failing ? JobState.Cancelled : JobState.Available, child.State);
            if (!failing) await queue.CompleteAsync(Assert.Single(await queue.AcquireAsync(new AcquireRequest("default", "w", 1, Lease))).Lease);
        }
    }

    [Fact]
    public async Task Two_parents_finishing_at_once_release_their_shared_children_once()
    {
        var queue = await database.NewQueueAsync();
        for (var round = 0; round < 10; round++)
        {
            var parents = await queue.EnqueueManyAsync([new JobRequest("p") { LocalKey = "a" }, new JobRequest("p") { LocalKey = "b" }]);
            // Children in shuffled id order relative to the parents' edges: each depends on both parents.
            var children = await queue.EnqueueManyAsync(Enumerable.Range(0, 300)
                .Select(_ => new JobRequest("c") { DependsOn = [parents[0].JobId, parents[1].JobId] }).ToArray());
            var leases = await queue.AcquireAsync(new AcquireRequest("default", "w", 2, Lease));
            Assert.Equal(2, leases.Count);

            await Task.WhenAll(leases.Select(l => Task.Run(async () => Assert.True((await queue.CompleteAsync(l.Lease)).Applied))));

            var released = await queue.AcquireAsync(new AcquireRequest("default", "w", 1000, Lease));
            Assert.Equal(children.Select(c => c.JobId).Order(), released.Select(j => j.Id).Order());
            await queue.AcknowledgeAsync(released.Select(j => JobAck.Success(j.Lease)).ToArray());
        }
    }

    [Fact]
    public async Task Concurrent_workers_never_acquire_the_same_job_and_every_job_finishes_once()
    {
        var queue = await database.NewQueueAsync();
        const int total = 3000;
        await queue.EnqueueManyAsync(Enumerable.Range(0, total).Select(_ => new JobRequest("k")).ToArray());
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<long, string>();
        var duplicates = 0;

        await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var worker = $"w{w}";
            while (true)
            {
                var jobs = await queue.AcquireAsync(new AcquireRequest("default", worker, 25, Lease));
                if (jobs.Count == 0) return;
                foreach (var job in jobs)
                {
                    if (!seen.TryAdd(job.Id, worker)) Interlocked.Increment(ref duplicates);
                }

                var results = await queue.AcknowledgeAsync(jobs.Select(j => JobAck.Success(j.Lease)).ToArray());
                Assert.All(results, r => Assert.True(r.Applied));
            }
        })));

        Assert.Equal(0, duplicates);
        Assert.Equal(total, seen.Count);
        await using var count = database.DataSource.CreateCommand($"SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FROM \"{queue.Schema}\".jobs");
        await using var reader = await count.ExecuteReaderAsync();
        await reader.ReadAsync();
        Assert.Equal((long)total, reader.GetInt64(0));
        Assert.Equal((long)total, reader.GetInt64(1));
    }

    [Fact]
    public async Task Concurrent_enqueues_of_one_unique_key_create_exactly_one_job()
    {
        var queue = await database.NewQueueAsync();

        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
            await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "only-one" }))));

        Assert.Single(results, r => r.Created);
        Assert.Single(results.Select(r => r.JobId).Distinct());
    }
}
