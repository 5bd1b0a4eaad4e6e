using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Scheduling.Hosting;

namespace Scheduling.Postgres;

/// <summary>
/// Holds this host's one LISTEN connection and turns notifications into wake-ups of the fetch
/// loops. On a lost connection it reconnects with capped, jittered backoff and wakes every loop,
/// since notifications sent meanwhile are gone (the poll would find the work anyway).
/// </summary>
internal sealed partial class PostgresNotificationListener : BackgroundService
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresJobQueue _queue;
    private readonly QueueSignals _signals;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public PostgresNotificationListener(NpgsqlDataSource dataSource, PostgresJobQueue queue, QueueSignals signals, TimeProvider time, ILogger<PostgresNotificationListener>? logger = null)
    {
        _dataSource = dataSource;
        _queue = queue;
        _signals = signals;
        _time = time;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    private static async Task StopListeningAsync(NpgsqlConnection connection)
    {
        if (connection.FullState != System.Data.ConnectionState.Open) return; // a broken one is not pooled again
        try
        {
            await using var unlisten = new NpgsqlCommand("UNLISTEN *", connection);
            await unlisten.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException)
        {
            // The connection broke meanwhile: the pool drops it.
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var connection = await _dataSource.OpenConnectionAsync(stoppingToken).ConfigureAwait(false);
                await using (connection.ConfigureAwait(false))
                {
                    connection.Notification += (_, e) => _signals.Notify(e.Payload);
                    await using (var listen = new NpgsqlCommand($"LISTEN \"{_queue.NotificationChannel}\"", connection))
                        await listen.ExecuteNonQueryAsync(stoppingToken).ConfigureAwait(false);
                    if (failures > 0) ListenerRecovered(_logger);
                    failures = 0;
                    _signals.NotifyAll();
                    try
                    {
                        while (!stoppingToken.IsCancellationRequested)
                        {
                            // Time out now and then to prove the connection still works.
                            if (!await connection.WaitAsync(TimeSpan.FromSeconds(30), stoppingToken).ConfigureAwait(false))
                            {
                                await using var ping = new NpgsqlCommand("SELECT 1", connection);
                                await ping.ExecuteScalarAsync(stoppingToken).ConfigureAwait(false);
                            }
                        }
                    }
                    finally
                    {
                        // Never back to the pool still listening (the queue's data source skips the reset
                        // on return): a later borrower would carry this host's notifications.
                        await StopListeningAsync(connection).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                var delay = Backoff.Delay(++failures, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10));
                if (failures == 1) ListenerLost(_logger, ex.GetBaseException().Message, delay); // one line; the stack at Debug
                ListenerFailedDetail(_logger, ex);
                _signals.NotifyAll();
                try { await Task.Delay(delay, _time, stoppingToken).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    [LoggerMessage(1100, LogLevel.Warning, "The LISTEN connection was lost: {Reason}; reconnecting (first retry in {Delay}); workers poll meanwhile")]
    private static partial void ListenerLost(ILogger logger, string reason, TimeSpan delay);

    [LoggerMessage(1103, LogLevel.Debug, "The LISTEN connection failed")]
    private static partial void ListenerFailedDetail(ILogger logger, Exception exception);

    [LoggerMessage(1101, LogLevel.Information, "The LISTEN connection is back")]
    private static partial void ListenerRecovered(ILogger logger);
}
