using Npgsql;

namespace Scheduling.Postgres;

/// <summary>
/// Applies the numbered SQL files embedded in this assembly, in order, each once, in one
/// transaction under a transaction-scoped advisory lock (so concurrent hosts serialise and a
/// dead connection cannot leave the lock held).
/// </summary>
internal sealed class PostgresMigrator
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresSchema _schema;

    public PostgresMigrator(NpgsqlDataSource dataSource, PostgresSchema schema)
    {
        _dataSource = dataSource;
        _schema = schema;
    }

    /// <summary>All migrations this library knows, by version.</summary>
    public static IReadOnlyList<Migration> All { get; } = LoadMigrations();

    public static int LatestVersion => All[^1].Version;

    /// <summary>
    /// The oldest library, named by the newest migration it knows, that can still serve a schema this
    /// library migrated: stored with the schema (<c>schema_compatibility</c>), and checked by every
    /// library before it uses the schema, so an older one refuses instead of stranding jobs. Raise it
    /// with a migration older code cannot live with. 5: before dependencies, code never releases
    /// children (migrations 6 to 8 are safe for it: 7's columns have defaults older code ignores, 8's is nullable).
    /// </summary>
    public const int OldestCompatibleLibrary = 5;

    /// <summary>
    /// For hosts that do not migrate: refuses a schema with migrations this library needs still
    /// pending, or one newer than this library can serve, with both versions in the message.
    /// </summary>
    public async Task VerifyAsync(CancellationToken cancellationToken)
    {
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var (newest, oldestLibrary) = await ReadVersionsAsync(connection, null, cancellationToken).ConfigureAwait(false);
            if (newest < LatestVersion)
                throw new InvalidOperationException(
                    $"Schema '{_schema.Name}' is at migration {newest}; this version of Scheduling.Postgres needs {LatestVersion}. Run `scheduling migrate` (or let one host apply migrations) first.");
            RefuseIfTooNew(newest, oldestLibrary);
        }
    }

    private void RefuseIfTooNew(int newest, int oldestLibrary)
    {
        if (newest > LatestVersion && oldestLibrary > LatestVersion)
            throw new InvalidOperationException(
                $"Schema '{_schema.Name}' is at migration {newest} and needs a library that knows migration {oldestLibrary} or later; this version of Scheduling.Postgres knows {LatestVersion}. Upgrade the library before running it against this database.");
    }

    private async Task<(int Newest, int OldestLibrary)> ReadVersionsAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        // Either table may be missing (a fresh database, or one migrated before compatibility was recorded).
        bool hasMigrations, hasCompatibility;
        await using (var exists = new NpgsqlCommand(_schema.Apply(
            "SELECT to_regclass('{schema}.schema_migrations') IS NOT NULL, to_regclass('{schema}.schema_compatibility') IS NOT NULL"), connection, transaction))
        await using (var reader = await exists.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            (hasMigrations, hasCompatibility) = (reader.GetBoolean(0), reader.GetBoolean(1));
        }

        async Task<int> MaxAsync(string sql)
        {
            await using var read = new NpgsqlCommand(_schema.Apply(sql), connection, transaction);
            return (int)(await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        var newest = hasMigrations ? await MaxAsync("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations").ConfigureAwait(false) : 0;
        var oldest = hasCompatibility ? await MaxAsync("SELECT coalesce(max(oldest_library_migration), 0) FROM {schema}.schema_compatibility").ConfigureAwait(false) : 0;
        return (newest, oldest);
    }

    /// <returns>The versions applied by this call.</returns>
    public async Task<IReadOnlyList<int>> MigrateAsync(CancellationToken cancellationToken)
    {
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, transaction))
                {
                    lockCommand.Parameters.Add(new NpgsqlParameter { Value = _schema.AdvisoryLockKey });
                    await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await ExecuteAsync(connection, transaction, _schema.Apply("""
                    CREATE SCHEMA IF NOT EXISTS {schema};
                    CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                        version    integer PRIMARY KEY,
                        name       text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE TABLE IF NOT EXISTS {schema}.schema_functions (
                        name       text PRIMARY KEY,
                        checksum   text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE TABLE IF NOT EXISTS {schema}.schema_compatibility (
                        one                      boolean PRIMARY KEY DEFAULT true CHECK (one),
                        oldest_library_migration integer NOT NULL
                    );
                    """), cancellationToken).ConfigureAwait(false);

                var applied = new HashSet<int>();
                await using (var read = new NpgsqlCommand(_schema.Apply("SELECT version FROM {schema}.schema_migrations"), connection, transaction))
                await using (var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) applied.Add(reader.GetInt32(0));
                }

                var newest = applied.Count == 0 ? 0 : applied.Max();
                var (_, oldestLibrary) = await ReadVersionsAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
                RefuseIfTooNew(newest, oldestLibrary);
                if (newest > LatestVersion)
                {
                    // A newer library migrated this schema and says this one can still serve it (a rolling
                    // deploy or a rollback): apply nothing, not even this library's older function bodies.
                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                    return [];
                }

                var done = new List<int>();
                foreach (var migration in All.Where(m => !applied.Contains(m.Version)))
                {
                    await ExecuteAsync(connection, transaction, _schema.Apply(migration.Sql), cancellationToken).ConfigureAwait(false);
                    await using var record = new NpgsqlCommand(_schema.Apply("INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)"), connection, transaction);
                    record.Parameters.Add(new NpgsqlParameter { Value = migration.Version });
                    record.Parameters.Add(new NpgsqlParameter { Value = migration.Name });
                    await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    done.Add(migration.Version);
                }

                await ApplyChangedFunctionsAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
                await using (var compatibility = new NpgsqlCommand(_schema.Apply("""
                    INSERT INTO {schema}.schema_compatibility AS c (one, oldest_library_migration) VALUES (true, $1)
                    ON CONFLICT (one) DO UPDATE SET oldest_library_migration = greatest(c.oldest_library_migration, excluded.oldest_library_migration)
                    """), connection, transaction))
                {
                    compatibility.Parameters.Add(new NpgsqlParameter<int> { TypedValue = OldestCompatibleLibrary });
                    await compatibility.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return done;
            }
        }
    }

    /// <summary>
    /// The functions that run inside completing transactions keep their current body in one file
    /// each (Functions/*.sql, CREATE OR REPLACE); a file whose text changed since it was last
    /// applied to this schema is applied again, after the migrations it may depend on.
    /// </summary>
    private async Task ApplyChangedFunctionsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        var applied = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var read = new NpgsqlCommand(_schema.Apply("SELECT name, checksum FROM {schema}.schema_functions"), connection, transaction))
        await using (var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) applied[reader.GetString(0)] = reader.GetString(1);
        }

        foreach (var function in Functions)
        {
            var sql = _schema.Apply(function.Sql);
            var checksum = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(sql)));
            if (applied.TryGetValue(function.Name, out var current) && current == checksum) continue;
            await ExecuteAsync(connection, transaction, sql, cancellationToken).ConfigureAwait(false);
            await using var record = new NpgsqlCommand(_schema.Apply(
                "INSERT INTO {schema}.schema_functions (name, checksum) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()"),
                connection, transaction);
            record.Parameters.Add(new NpgsqlParameter { Value = function.Name });
            record.Parameters.Add(new NpgsqlParameter { Value = checksum });
            await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The current bodies of the library's functions (Functions/*.sql), in name order.</summary>
    internal static IReadOnlyList<(string Name, string Sql)> Functions { get; } = LoadResources("Scheduling.Postgres.Functions.").ToArray();

    private static IEnumerable<(string Name, string Sql)> LoadResources(string prefix)
    {
        var assembly = typeof(PostgresMigrator).Assembly;
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            yield return (resource[prefix.Length..^4], reader.ReadToEnd());
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static List<Migration> LoadMigrations()
    {
        var migrations = new List<Migration>();
        foreach (var (name, sql) in LoadResources("Scheduling.Postgres.Migrations."))
            migrations.Add(new Migration(int.Parse(name[..name.IndexOf('_', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture), name, sql));

        migrations.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1) throw new InvalidOperationException($"Migration numbering has a gap or duplicate at '{migrations[i].Name}'.");
        }

        return migrations;
    }

    internal sealed record Migration(int Version, string Name, string Sql);
}

/// <summary>
/// Runs the migrations (or, when the host does not migrate, checks the schema can be served) once per
/// process and schema before first use; a failed run is retried by the next caller.
/// </summary>
internal sealed class MigrationGate(PostgresMigrator migrator, bool enabled)
{
    private readonly Lock _lock = new();
    private Task? _migration;
    private volatile bool _done; // a host that does not migrate still checks once that it can serve the schema

    public void MarkDone() => _done = true;

    public async ValueTask EnsureAsync(CancellationToken cancellationToken)
    {
        if (_done) return;
        Task migration;
        lock (_lock)
        {
            if (_migration is null || _migration.IsFaulted || _migration.IsCanceled) _migration = RunAsync();
            migration = _migration;
        }

        await migration.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        if (enabled) await migrator.MigrateAsync(CancellationToken.None).ConfigureAwait(false);
        else await migrator.VerifyAsync(CancellationToken.None).ConfigureAwait(false);
        _done = true;
    }
}
