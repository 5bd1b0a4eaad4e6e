using Npgsql;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// A running job's last progress report as stored (<c>progress</c>, <c>progress_message</c>,
/// <c>progress_metadata</c>, <c>progress_at</c>): written by a heartbeat and by an acknowledgement
/// that carries one, read with the job; here only.
/// </summary>
internal static class ProgressColumns
{
    /// <summary>The columns as the reader reads them, in order (<see cref="Read"/>).</summary>
    public const string List = "progress, progress_message, progress_metadata::text, progress_at";

    /// <summary>How many columns <see cref="List"/> names.</summary>
    public const int Count = 4;

    /// <summary>
    /// The SET assignments of a statement updating <c>j</c>: from the row <paramref name="source"/>
    /// (its <c>fraction</c>, <c>message</c>, <c>metadata</c>) where <paramref name="reported"/> holds,
    /// dated <paramref name="now"/>; the job's own report elsewhere.
    /// </summary>
    public static string Assignments(string reported, string source, string now) => string.Join(",\n", [
        $"progress = CASE WHEN {reported} THEN {source}.fraction ELSE j.progress END",
        $"progress_message = CASE WHEN {reported} THEN {source}.message ELSE j.progress_message END",
        $"progress_metadata = CASE WHEN {reported} THEN {source}.metadata ELSE j.progress_metadata END",
        $"progress_at = CASE WHEN {reported} THEN {now} ELSE j.progress_at END"]);

    /// <summary>Reads <see cref="List"/> from <paramref name="first"/> on; null for a job that never reported.</summary>
    public static JobProgress? Read(NpgsqlDataReader reader, int first) =>
        reader.IsDBNull(first + 3) ? null
        : new JobProgress(reader.IsDBNull(first) ? null : reader.GetDouble(first), reader.IsDBNull(first + 1) ? null : reader.GetString(first + 1),
            reader.IsDBNull(first + 2) ? null : reader.GetString(first + 2)) { ReportedAt = reader.GetFieldValue<DateTimeOffset>(first + 3) };
}
