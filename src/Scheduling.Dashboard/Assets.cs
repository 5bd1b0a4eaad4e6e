namespace Scheduling.Dashboard;

/// <summary>The dashboard's stylesheet and script, embedded in the assembly: no CDN, works offline.</summary>
internal static class Assets
{
    private static readonly Dictionary<string, (byte[] Content, string ContentType)> Files = new(StringComparer.Ordinal)
    {
        ["dashboard.css"] = (Read("dashboard.css"), "text/css; charset=utf-8"),
        ["dashboard.js"] = (Read("dashboard.js"), "text/javascript; charset=utf-8"),
    };

    public static (byte[] Content, string ContentType)? Get(string name) => Files.TryGetValue(name, out var file) ? file : null;

    private static byte[] Read(string name)
    {
        using var stream = typeof(Assets).Assembly.GetManifestResourceStream("Scheduling.Dashboard.Assets." + name)
            ?? throw new InvalidOperationException($"The dashboard asset '{name}' is not embedded.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
