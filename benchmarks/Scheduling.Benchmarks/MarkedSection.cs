namespace Scheduling.Benchmarks;

/// <summary>A generated section of a document, between a begin and an end marker, rewritten in place by the command that generates it.</summary>
internal static class MarkedSection
{
    /// <summary>Replaces the text between the markers (the markers included; <paramref name="section"/> carries them), or appends the section under <paramref name="heading"/> when the file has none.</summary>
    public static void Write(string path, string begin, string end, string heading, string section)
    {
        var text = File.Exists(path) ? File.ReadAllText(path) : "";
        var at = text.IndexOf(begin, StringComparison.Ordinal);
        var to = text.IndexOf(end, StringComparison.Ordinal);
        text = at >= 0 && to > at
            ? text[..at] + section.TrimEnd('\n') + text[(to + end.Length)..]
            : text.TrimEnd('\n') + $"\n\n## {heading}\n" + section;
        File.WriteAllText(path, text);
        Console.WriteLine($"written to {path}");
    }
}
