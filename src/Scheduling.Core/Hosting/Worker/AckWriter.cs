using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>An acknowledgement waiting to be written, with the job it is for (its measures are tagged by it).</summary>
internal readonly record struct PendingAck(JobAck Ack, AcquiredJob Job);

/// <summary>
/// The completer: buffers acknowledgements for a few milliseconds and writes them together, one
/// statement per batch instead of one round trip per job, and counts what the store applied. A
/// failed write is retried, never dropped.
/// </summary>
internal sealed class AckWriter
{
    private readonly Channel<PendingAck> _channel;
    private readonly IJobWorkerStore _queue;
    private readonly SchedulingOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<int> _inFlight;

    // inFlight: how many jobs this host holds that could still finish and join the batch.
    public AckWriter(IJobWorkerStore queue, SchedulingOptions options, TimeProvider time, ILogger logger, Func<int>? inFlight = null)
    {
        _inFlight = inFlight ?? (static () => int.MaxValue);
        // Bounded: when the database falls behind, finishing jobs wait here, their slots stay taken
        // and fetching slows, instead of piling up leased rows the writer cannot keep up with.
        _channel = Channel.CreateBounded<PendingAck>(new BoundedChannelOptions(Math.Max(options.AckBatchSize * 4, 1000)) { FullMode = BoundedChannelFullMode.Wait });
        _queue = queue;
        _options = options;
        _time = time;
        _logger = logger;
    }

    /// <summary>Queues an acknowledgement without waiting (shutdown and settle paths); never drops it.</summary>
    public void Enqueue(PendingAck ack)
    {
        if (!_channel.Writer.TryWrite(ack)) _ = _channel.Writer.WriteAsync(ack).AsTask();
    }

    /// <summary>
    /// With no flush interval, writes the acknowledgement from the caller at once (many in
    /// parallel, one per finishing job); a failed write falls back to the buffered writer's retries.
    /// </summary>
    public async Task AcknowledgeAsync(PendingAck ack)
    {
        if (_options.AckFlushInterval > TimeSpan.Zero)
        {
            await _channel.Writer.WriteAsync(ack).ConfigureAwait(false);
            return;
        }

        try
        {
            var result = await _queue.AcknowledgeAsync([ack.Ack], CancellationToken.None).ConfigureAwait(false);
            Applied(ack, result[0]);
        }
        catch (Exception ex) when (ex is not ArgumentException)
        {
            Log.AckWriteFailed(_logger, ex, 1, TimeSpan.Zero);
            Enqueue(ack);
        }
    }

    /// <summary>Stops taking acknowledgements; <see cref="RunAsync"/> ends once the buffer is written.</summary>
    public void Complete() => _channel.Writer.TryComplete();

    /// <param name="abort">Cancelled when even the remaining buffer must be abandoned (leases then expire and jobs are retried).</param>
    public async Task RunAsync(CancellationToken abort)
    {
        var reader = _channel.Reader;
        var batch = new List<PendingAck>(_options.AckBatchSize);
        try
        {
            while (await reader.WaitToReadAsync(abort).ConfigureAwait(false))
            {
                // Wait for company only when other held jobs could still join the batch: an idle host
                // (a chain of dependent jobs, a lone job) writes at once, so its children start sooner.
                if (_options.AckFlushInterval > TimeSpan.Zero && reader.Count < _options.AckBatchSize && !reader.Completion.IsCompleted && _inFlight() > 0)
                    await Task.Delay(_options.AckFlushInterval, _time, abort).ConfigureAwait(false);
                while (batch.Count < _options.AckBatchSize && reader.TryRead(out var ack)) batch.Add(ack);
                await WriteAsync(batch, abort).ConfigureAwait(false);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            var left = batch.Count + reader.Count;
            if (left > 0) Log.AcksAbandoned(_logger, left);
        }
    }

    /// <summary>Counts what the store did with one acknowledgement; a stale one is logged.</summary>
    public void Applied(PendingAck ack, AckResult result)
    {
        if (!result.Applied) Log.StaleAck(_logger, result.JobId);
        JobOutcomes.Applied(ack.Job, ack.Ack.Kind, result);
    }

    private async Task WriteAsync(List<PendingAck> batch, CancellationToken abort)
    {
        var acks = batch.Select(p => p.Ack).ToArray();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var results = await _queue.AcknowledgeAsync(acks, abort).ConfigureAwait(false);
                for (var i = 0; i < results.Count; i++) Applied(batch[i], results[i]);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException && ex is not ArgumentException)
            {
                var delay = Backoff.Delay(attempt, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5));
                Log.AckWriteFailed(_logger, ex, batch.Count, delay);
                await Task.Delay(delay, _time, abort).ConfigureAwait(false);
            }
        }
    }
}
