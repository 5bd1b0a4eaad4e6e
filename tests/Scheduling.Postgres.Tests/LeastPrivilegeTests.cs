using Npgsql;
using Xunit;

namespace Scheduling.Postgres.Tests;

/// <summary>Migrations run as an owner role; the application runs as a role that can only use the schema's tables.</summary>
public sealed class LeastPrivilegeTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task An_owner_role_migrates_and_an_application_role_with_only_table_privileges_runs_the_queue()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var (owner, app, reader, schema) = ($"sched_owner_{suffix}", $"sched_app_{suffix}", $"sched_read_{suffix}", database.NewSchema());
        var password = Guid.NewGuid().ToString("N"); // servers with password authentication (scram-sha-256) need one; trust-auth ones ignore it
        var dbName = new NpgsqlConnectionStringBuilder(database.ConnectionString).Database;
        await using (var setup = database.DataSource.CreateCommand($"""
            CREATE ROLE {owner} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD '{password}';
            CREATE ROLE {app} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD '{password}';
            CREATE ROLE {reader} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD '{password}';
            GRANT CREATE ON DATABASE "{dbName}" TO {owner};
            """))
            await setup.ExecuteNonQueryAsync();
        string As(string role) => new NpgsqlConnectionStringBuilder(database.ConnectionString) { Username = role, Password = password }.ConnectionString;
        try
        {
            await RunAsOwnerAndApplicationAsync(schema, owner, app, reader, As);
        }
        finally
        {
            // Roles belong to the whole server, not to the test's database: leave none behind on a shared one.
            NpgsqlConnection.ClearAllPools();
            await using var drop = database.DataSource.CreateCommand($"DROP OWNED BY {owner}, {app}, {reader} CASCADE; DROP ROLE {reader}; DROP ROLE {app}; DROP ROLE {owner};");
            await drop.ExecuteNonQueryAsync();
        }

        await using var left = database.DataSource.CreateCommand($"SELECT count(*) FROM pg_roles WHERE rolname IN ('{owner}', '{app}', '{reader}')");
        Assert.Equal(0L, (long)(await left.ExecuteScalarAsync())!);
    }

    private static async Task RunAsOwnerAndApplicationAsync(string schema, string owner, string app, string reader, Func<string, string> As)
    {
        await using (var ownerSource = NpgsqlDataSource.Create(As(owner)))
        {
            Assert.Equal(PostgresMigrator.All.Count, (await new PostgresJobQueue(ownerSource, new PostgresQueueOptions { Schema = schema }).MigrateAsync()).Count);
            await using var grant = ownerSource.CreateCommand($"""
                GRANT USAGE ON SCHEMA "{schema}" TO {app};
                GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {app};
                GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {app};
                GRANT USAGE ON SCHEMA "{schema}" TO {reader};
                GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {reader};
                """);
            await grant.ExecuteNonQueryAsync();
        }

        await using var appSource = NpgsqlDataSource.Create(As(app));
        var queue = new PostgresJobQueue(appSource, new PostgresQueueOptions { Schema = schema, ApplyMigrations = false });
        await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "u", Command = "run", Definition = new JobDefinition("d", 100) });
        await queue.EnqueueManyAsync(Enumerable.Range(0, 40).Select(_ => new JobRequest("k")).ToArray()); // binary COPY
        var jobs = await queue.AcquireAsync(new AcquireRequest("default", "w", 100, TimeSpan.FromMinutes(1)));
        Assert.Equal(41, jobs.Count);
        Assert.Equal(41, (await queue.HeartbeatAsync("w", jobs.Select(j => j.Lease).ToArray(), TimeSpan.FromMinutes(1))).Count);
        var acks = await queue.AcknowledgeAsync(jobs.Select(j => JobAck.Success(j.Lease) with { Usage = new ResourceUsage { PeakMemoryMb = 50 } }).ToArray());
        Assert.All(acks, a => Assert.True(a.Applied));
        Assert.Equal(0, await queue.RescueExpiredLeasesAsync());

        // A read-only role, and the application role in a read-only transaction (as on a standby), read
        // the statistics and activity: the fold of the maintained counts is skipped, the counts are the same.
        var held = (long)(await queue.EnqueueManyAsync([new JobRequest("k"), new JobRequest("k")])).Count;
        foreach (var connection in new[] { As(reader), As(app) + ";Options=-c default_transaction_read_only=on" })
        {
            await using var readSource = NpgsqlDataSource.Create(connection);
            var readOnly = new PostgresJobQueue(readSource, new PostgresQueueOptions { Schema = schema, ApplyMigrations = false });
            await queue.EnqueueAsync(new JobRequest("k")); // a change the reader cannot fold
            held++;
            var stats = Assert.Single(await readOnly.GetQueueStatsAsync());
            Assert.Equal((held, 0L), (stats.Available, stats.Running));
            Assert.Equal(41, (await readOnly.GetActivityAsync(TimeSpan.FromHours(1))).Sum(a => a.Succeeded));
        }

        Assert.Equal(41, await queue.PurgeFinishedAsync(TimeSpan.Zero, 100));
        Assert.Equal(held, Assert.Single(await queue.GetQueueStatsAsync()).Available); // the application role folds what the readers left
        Assert.NotEmpty((await PostgresStorageReport.ReadAsync(appSource, schema)).Tables);

        // No DDL for the application role.
        await using var ddl = appSource.CreateCommand($"CREATE TABLE \"{schema}\".intruder (id int)");
        var denied = await Assert.ThrowsAsync<PostgresException>(() => ddl.ExecuteNonQueryAsync());
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, denied.SqlState);
    }
}
