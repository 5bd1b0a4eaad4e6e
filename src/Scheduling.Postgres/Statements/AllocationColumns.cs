using Npgsql;

namespace Scheduling.Postgres.Statements;

/// <summary>
/// The ARA allocation as stored on a job: the columns every statement that returns it lists, in
/// this order, and their reader. One list, so a statement and its reader cannot drift apart.
/// </summary>
internal static class AllocationColumns
{
    /// <summary>The columns, for a select list (qualified by <c>j.</c> where the statement needs it).</summary>
    public const string List = "definition_id, memory_mb, cpu_millicores, gpus, baseline_memory_mb, ara_source, ara_skip_reason, ara_samples, ara_clamped, ara_ceiling_hit, ara_statistic, expected_duration_ms";

    /// <summary>The columns qualified by a table alias.</summary>
    public static string Qualified(string alias) => string.Join(", ", List.Split(", ").Select(c => $"{alias}.{c}"));

    /// <summary>How many columns <see cref="List"/> has.</summary>
    public const int Count = 12;

    private const int Definition = 0, Memory = 1, Cpu = 2, Gpus = 3, Baseline = 4, Source = 5, Skip = 6, Samples = 7, Clamped = 8, Ceiling = 9, Statistic = 10, ExpectedDuration = 11;

    /// <summary>Reads the allocation whose first column is at <paramref name="first"/>; null for a job without a definition.</summary>
    public static ResourceAllocation? Read(NpgsqlDataReader reader, int first)
    {
        if (reader.IsDBNull(first + Definition)) return null;
        int? Int(int i) => reader.IsDBNull(first + i) ? null : reader.GetInt32(first + i);
        bool Flag(int i) => !reader.IsDBNull(first + i) && reader.GetBoolean(first + i);
        string? Text(int i) => reader.IsDBNull(first + i) ? null : reader.GetString(first + i);
        return new ResourceAllocation
        {
            DefinitionId = reader.GetString(first + Definition), MemoryMb = Int(Memory) ?? 0, CpuMillicores = Int(Cpu) ?? 0, Gpus = Int(Gpus) ?? 0,
            BaselineMemoryMb = Int(Baseline) ?? 0, Source = ResourceAllocator.ParseSource(Text(Source)), SkipReason = ResourceAllocator.ParseSkip(Text(Skip)),
            SampleCount = Int(Samples) ?? 0, Clamped = Flag(Clamped), CeilingHit = Flag(Ceiling), Statistic = Text(Statistic),
            ExpectedDuration = reader.IsDBNull(first + ExpectedDuration) ? null : TimeSpan.FromMilliseconds(reader.GetInt64(first + ExpectedDuration)),
        };
    }
}
