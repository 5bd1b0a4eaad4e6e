using Npgsql;
using NpgsqlTypes;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// The first statement of an acknowledgement batch: how long the batch's implicit transaction may
/// wait for a row lock (<c>set_config(…, is_local =&gt; true)</c>, so it ends with the batch and the
/// pooled connection keeps its own setting). A batch that times out fails as a whole with SQLSTATE
/// 55P03; the completer then splits it and retries the held row apart.
/// </summary>
internal static class AckLockTimeout
{
    public const string Sql = "SELECT set_config('lock_timeout', $1, true)";

    public static NpgsqlBatchCommand Command(TimeSpan timeout)
    {
        var command = new NpgsqlBatchCommand(Sql);
        var ms = Math.Max(1, (long)timeout.TotalMilliseconds);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ms.ToString(System.Globalization.CultureInfo.InvariantCulture) + "ms", NpgsqlDbType = NpgsqlDbType.Text });
        return command;
    }

    /// <summary>Moves the reader past the setting's one-row result.</summary>
    public static Task<bool> SkipAsync(NpgsqlDataReader reader, CancellationToken cancellationToken) => reader.NextResultAsync(cancellationToken);
}
