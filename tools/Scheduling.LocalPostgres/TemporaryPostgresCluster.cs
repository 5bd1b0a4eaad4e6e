using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Scheduling.LocalPostgres;

/// <summary>
/// A throwaway PostgreSQL cluster: initdb into a temporary folder, started on a free loopback
/// port with fsync on, stopped and deleted on dispose or process exit. Clusters left behind by a
/// killed process are removed by the next start.
/// </summary>
/// <remarks>
/// TCP connections need a password (scram-sha-256, a random one per cluster, carried by
/// <see cref="ConnectionString"/>), as on the servers users run: code that only works against a
/// trust-auth server (a role created without a password, say) fails here too.
/// </remarks>
public sealed class TemporaryPostgresCluster : IAsyncDisposable
{
    private const string FolderPrefix = "scheduling-pg-";
    private readonly string _binDir;
    private readonly string _root;
    private readonly string? _runAs;
    private readonly string _password = Guid.NewGuid().ToString("N");
    private string _serverOptions = "";
    private int _stopped;

    private TemporaryPostgresCluster(string binDir, string root, int port, string? runAs)
    {
        _binDir = binDir;
        _root = root;
        Port = port;
        _runAs = runAs;
    }

    /// <summary>The port the server listens on (127.0.0.1).</summary>
    public int Port { get; }

    /// <summary>A connection string to the given database as the superuser.</summary>
    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Password={_password};Database={database};Pooling=true;Maximum Pool Size=50;Timeout=30;Command Timeout=120";

    /// <summary>Where the binaries come from: PATH, pg_config --bindir, or Debian's /usr/lib/postgresql/N/bin (newest first).</summary>
    public static string? FindBinDirectory()
    {
        var candidates = new List<string>();
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            candidates.Add(dir);
        if (TryRun("pg_config", "--bindir") is { } fromPgConfig) candidates.Add(fromPgConfig.Trim());
        if (Directory.Exists("/usr/lib/postgresql"))
        {
            candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql")
                .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0)
                .Select(d => Path.Combine(d, "bin")));
        }

        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")));
    }

    /// <summary>The server settings the cluster adds to PostgreSQL's defaults unless started stock: those docs/operations.md recommends.</summary>
    public const string RecommendedSettings = "-c autovacuum_naptime=5s";

    /// <summary>Initialises and starts a new cluster with the recommended settings.</summary>
    /// <exception cref="InvalidOperationException">The binaries are missing, or the server would not start (the message carries its log).</exception>
    public static Task<TemporaryPostgresCluster> StartAsync(CancellationToken cancellationToken = default) => StartAsync(stock: false, cancellationToken);

    /// <summary>
    /// Initialises and starts a new cluster; <paramref name="stock"/>: none of the recommended settings,
    /// only what any cluster needs (port, socket, connections), so it runs as a user's stock server does.
    /// </summary>
    /// <exception cref="InvalidOperationException">The binaries are missing, or the server would not start (the message carries its log).</exception>
    public static async Task<TemporaryPostgresCluster> StartAsync(bool stock, CancellationToken cancellationToken = default)
    {
        var binDir = FindBinDirectory() ?? throw new InvalidOperationException(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH, through 'pg_config --bindir', or under /usr/lib/postgresql/<version>/bin. " +
            "Install them (Debian/Ubuntu: 'apt-get install postgresql'), or set SCHEDULING_TEST_POSTGRES to the connection string of a server where the user may create databases.");
        RemoveAbandonedClusters(binDir);

        var runAs = IsRoot() ? "postgres" : null; // initdb refuses to run as root
        var root = Path.Combine(Path.GetTempPath(), FolderPrefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        await File.WriteAllTextAsync(Path.Combine(root, "owner.pid"), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), cancellationToken);
        if (runAs is not null) Run("chown", ["-R", runAs, root]);

        var cluster = new TemporaryPostgresCluster(binDir, root, FreePort(), runAs);
        cluster.StartReaper();
        try
        {
            var data = Path.Combine(root, "data");
            // --no-sync only skips initdb's own flush of the fresh files; the server keeps fsync on.
            var passwordFile = Path.Combine(root, "password");
            await File.WriteAllTextAsync(passwordFile, cluster._password, cancellationToken);
            cluster.RunPg("initdb", ["-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile", passwordFile, "-E", "UTF8", "--locale=C", "--no-sync"]);
            File.Delete(passwordFile);
            cluster._serverOptions = $"-p {cluster.Port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c shared_buffers=128MB" + (stock ? "" : " " + RecommendedSettings);
            cluster.StartServer();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the server and deletes its folder.</summary>
    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }

    /// <summary>Restarts the server (existing connections break), for reliability tests.</summary>
    public void Restart() => RunPg("pg_ctl", ["-D", Path.Combine(_root, "data"), "-l", Path.Combine(_root, "server.log"), "-m", "fast", "-w", "-t", "60", "restart"]);

    /// <summary>
    /// Stops the server the way a crash or a power cut does (<c>-m immediate</c>: no checkpoint, every
    /// connection cut; the next start recovers from the WAL), for reliability tests. Start it again with <see cref="StartServer"/>.
    /// </summary>
    public void StopImmediately() => RunPg("pg_ctl", ["-D", Path.Combine(_root, "data"), "-m", "immediate", "-w", "-t", "60", "stop"]);

    /// <summary>Starts the server (again, after <see cref="StopImmediately"/>), waiting until it accepts connections.</summary>
    public void StartServer() => RunPg("pg_ctl", ["-D", Path.Combine(_root, "data"), "-l", Path.Combine(_root, "server.log"), "-o", _serverOptions, "-w", "-t", "60", "start"]);

    private void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1) return;
        try
        {
            if (File.Exists(Path.Combine(_root, "data", "postmaster.pid")))
                RunPg("pg_ctl", ["-D", Path.Combine(_root, "data"), "-m", "immediate", "-w", "-t", "30", "stop"]);
        }
        catch (InvalidOperationException)
        {
            // Deleting the folder below still frees the disk; a server that would not stop is reported by the next run's clean-up.
        }

        for (var attempt = 0; attempt < 5 && Directory.Exists(_root); attempt++)
        {
            // The server may still be removing its socket and lock files as we delete.
            try { Directory.Delete(_root, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>
    /// A detached watcher that stops the server and deletes the folder once this process is gone,
    /// however it ends: test hosts are often killed before exit handlers finish.
    /// </summary>
    private void StartReaper()
    {
        const string script = """
            exec </dev/null >/dev/null 2>&1
            while kill -0 "$1" 2>/dev/null; do sleep 1; done
            if [ -f "$2/postmaster.pid" ]; then
              if [ -n "$5" ]; then runuser -u "$5" -- "$4" -D "$2" -m immediate -w -t 30 stop; else "$4" -D "$2" -m immediate -w -t 30 stop; fi
            fi
            rm -rf "$3"
            """;
        var start = new ProcessStartInfo("setsid") { UseShellExecute = false };
        foreach (var arg in (string[])["sh", "-c", script, "reaper", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     Path.Combine(_root, "data"), _root, Path.Combine(_binDir, "pg_ctl"), _runAs ?? ""])
            start.ArgumentList.Add(arg);
        using var reaper = Process.Start(start);
    }

    private static void RemoveAbandonedClusters(string binDir)
    {
        foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), FolderPrefix + "*"))
        {
            var pidFile = Path.Combine(dir, "owner.pid");
            if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile), out var owner) || IsAlive(owner)) continue;
            var abandoned = new TemporaryPostgresCluster(binDir, dir, 0, IsRoot() ? "postgres" : null);
            abandoned.Stop();
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private void RunPg(string tool, IReadOnlyList<string> args)
    {
        var exe = Path.Combine(_binDir, tool);
        if (_runAs is null) Run(exe, args);
        else Run("runuser", ["-u", _runAs, "--", exe, .. args]);
    }

    private static void Run(string fileName, IReadOnlyList<string> args)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["LC_ALL"] = "C";
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            var log = args.Contains("start") ? TryReadLog(args) : "";
            throw new InvalidOperationException($"'{fileName} {string.Join(' ', args)}' failed with exit code {process.ExitCode}:\n{output}{log}");
        }
    }

    private static string TryReadLog(IReadOnlyList<string> args)
    {
        var index = args.ToList().IndexOf("-l");
        return index >= 0 && File.Exists(args[index + 1]) ? "\nserver log:\n" + File.ReadAllText(args[index + 1]) : "";
    }

    private static string? TryRun(string fileName, string arg)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(fileName, arg) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (process is null) return null;
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool IsRoot() => !OperatingSystem.IsWindows() && TryRun("id", "-u")?.Trim() == "0";
}
