using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Scheduling.Postgres;

/// <summary>
/// The configurable schema name: validated once as a plain identifier and always used quoted,
/// so configuration can never inject SQL.
/// </summary>
internal sealed partial class PostgresSchema
{
    /// <param name="name">The schema name.</param>
    /// <param name="parameterName">The caller's name for it, used in the error when it is not valid.</param>
    public PostgresSchema(string name, string parameterName = "schema")
    {
        Validate(name, parameterName);
        Name = name;
        Quoted = "\"" + name + "\"";
        NotificationChannel = name + "_jobs";
        AdvisoryLockKey = BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("scheduling:migrations:" + name)), 0);
    }

    public string Name { get; }

    /// <summary>The schema as a quoted identifier, ready to splice into SQL.</summary>
    public string Quoted { get; }

    /// <summary>The LISTEN/NOTIFY channel that announces new work in this schema.</summary>
    public string NotificationChannel { get; }

    public long AdvisoryLockKey { get; }

    /// <summary>Replaces <c>{schema}</c> in a statement with the quoted schema.</summary>
    public string Apply(string sql) => sql.Replace("{schema}", Quoted, StringComparison.Ordinal);

    public static void Validate(string? name, string parameterName)
    {
        if (string.IsNullOrEmpty(name))
            throw new ArgumentException("The schema name is required.", parameterName);
        if (!PlainIdentifier().IsMatch(name))
            throw new ArgumentException(
                $"The schema name '{name}' is not a plain identifier: use 1-50 lowercase letters, digits or '_', starting with a letter or '_'.",
                parameterName);
        if (name.StartsWith("pg_", StringComparison.Ordinal))
            throw new ArgumentException($"The schema name '{name}' is reserved by PostgreSQL (names starting with 'pg_').", parameterName);
    }

    // 50 characters leave room for the "_jobs" channel suffix inside PostgreSQL's 63-byte limit.
    [GeneratedRegex("^[a-z_][a-z0-9_]{0,49}$", RegexOptions.CultureInvariant)]
    private static partial Regex PlainIdentifier();
}
