using System.Diagnostics;

namespace Scheduling.QueueContract;

/// <summary>Runs a built .NET tool of this repository (copied next to the tests) as a real process.</summary>
public static class ToolProcess
{
    /// <summary>Runs <paramref name="dll"/> with <paramref name="args"/> to completion; returns its exit code and output.</summary>
    public static async Task<(int Exit, string Out, string Err)> RunAsync(string dll, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        using var process = Start(dll, args, environment);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output, await error);
    }

    /// <summary>Starts <paramref name="dll"/> with redirected output, for tests that talk to it while it runs.</summary>
    public static Process Start(string dll, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
        return Process.Start(start) ?? throw new InvalidOperationException($"Could not start {dll}.");
    }
}
