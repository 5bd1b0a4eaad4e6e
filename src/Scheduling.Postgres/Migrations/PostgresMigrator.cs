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
                    """), cancellationToken).ConfigureAwait(false);

                var applied = new HashSet<int>();
                await using (var read = new NpgsqlCommand(_schema.Apply("SELECT version FROM {schema}.schema_migrations"), connection, transaction))
                await using (var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) applied.Add(reader.GetInt32(0));
                }

                var newest = applied.Count == 0 ? 0 : applied.Max();
                if (newest > LatestVersion)
                    throw new InvalidOperationException(
                        $"Schema '{_schema.Name}' is at migration {newest}, newer than this version of Scheduling.Postgres knows ({LatestVersion}). Upgrade the library before running it against this database.");

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

/// <summary>Runs the migrations once per process and schema before first use; a failed run is retried by the next caller.</summary>
internal sealed class MigrationGate(PostgresMigrator migrator, bool enabled)
{
    private readonly Lock _lock = new();
    private Task? _migration;
    private volatile bool _done = !enabled;

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
        await migrator.MigrateAsync(CancellationToken.None).ConfigureAwait(false);
        _done = true;
    }
}
