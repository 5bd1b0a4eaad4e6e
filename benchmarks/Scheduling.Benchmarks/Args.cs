namespace Scheduling.Benchmarks;

/// <summary>Command-line options of the benchmark commands.</summary>
internal static class Args
{
    /// <summary>The value after <paramref name="name"/> in <paramref name="args"/>, or null.</summary>
    public static string? Option(string[] args, string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
