using System.Net;
using System.Net.Sockets;

namespace Scheduling.Postgres.Tests.Faults;

/// <summary>
/// A TCP proxy between the library and PostgreSQL that a test can make misbehave: pause every
/// connection (bytes stop flowing both ways, as in a network partition), or reset them all at once
/// (RST, as when a middlebox or the server's host drops them). Real sockets, real client code paths.
/// </summary>
public sealed class TcpFaultProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _targetHost;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(TcpClient Client, TcpClient Server)> _pairs = [];
    private readonly Task _accepting;
    private volatile TaskCompletionSource _flowing = Flowing();
    private int _resets;

    public TcpFaultProxy(string targetHost, int targetPort)
    {
        _targetHost = targetHost;
        _targetPort = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>The port clients connect to instead of the server's.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>How many connections were reset.</summary>
    public int Resets => Volatile.Read(ref _resets);

    /// <summary>Stops every byte in both directions until <see cref="Resume"/>; connections stay open.</summary>
    public void Pause() => _flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Lets bytes flow again.</summary>
    public void Resume() => _flowing.TrySetResult();

    /// <summary>Resets every open connection (RST both ways); new connections are accepted as before.</summary>
    public void ResetAll()
    {
        (TcpClient, TcpClient)[] pairs;
        lock (_pairs)
        {
            pairs = [.. _pairs];
            _pairs.Clear();
        }

        foreach (var (client, server) in pairs)
        {
            Reset(client);
            Reset(server);
            Interlocked.Increment(ref _resets);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Resume();
        ResetAll();
        try { await _accepting; } catch (OperationCanceledException) { } catch (SocketException) { } catch (ObjectDisposedException) { }
        _stop.Dispose();
    }

    private static TaskCompletionSource Flowing()
    {
        var flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        flowing.SetResult();
        return flowing;
    }

    private static void Reset(TcpClient socket)
    {
        try
        {
            if (socket.Client is { } raw) raw.LingerState = new LingerOption(true, 0); // close with RST, not FIN
            socket.Close();
        }
        catch (ObjectDisposedException) { }
        catch (SocketException) { }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            var server = new TcpClient();
            try { await server.ConnectAsync(_targetHost, _targetPort, _stop.Token); }
            catch (SocketException) { Reset(client); server.Dispose(); continue; }
            client.NoDelay = server.NoDelay = true;
            lock (_pairs) _pairs.Add((client, server));
            _ = PumpAsync(client, server);
            _ = PumpAsync(server, client);
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            var input = from.GetStream();
            var output = to.GetStream();
            while (true)
            {
                var read = await input.ReadAsync(buffer, _stop.Token);
                if (read == 0) break;
                await _flowing.Task.WaitAsync(_stop.Token);
                await output.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
        }
        finally
        {
            Reset(from);
            Reset(to);
        }
    }
}
