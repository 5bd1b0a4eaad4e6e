using Npgsql;

namespace Scheduling.Postgres.Statements;

/// <summary>A job's own attempt timeout as stored (<c>timeout_ms</c>, whole milliseconds; null for none): written and read here only.</summary>
internal static class TimeoutColumn
{
    public static int? ToStored(TimeSpan? timeout) => timeout is { } t ? (int)t.TotalMilliseconds : null;

    public static TimeSpan? Read(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : TimeSpan.FromMilliseconds(reader.GetInt32(ordinal));
}
