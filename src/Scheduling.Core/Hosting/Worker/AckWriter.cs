using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>An acknowledgement waiting to be written, with the job it is for (its measures are tagged by it).</summary>
internal readonly record struct PendingAck(JobAck Ack, AcquiredJob Job)
{
    /// <summary>True when the acknowledgement took a place in the writer's bounded room (a finishing job's), to give back once written.</summary>
    public bool HoldsRoom { get; init; }
}

/// <summary>
/// The completer: buffers acknowledgements for a few milliseconds and writes them together, one
/// statement per batch instead of one round trip per job, and counts what the store applied. It
/// never gives up on a write and never dies of one: a write the store cannot take for want of the
/// database is retried whole; one it refuses for what is in the batch (a value it cannot encode, a
/// row locked by someone else's transaction) is split, so the good acknowledgements are written and
/// only the bad one is dealt with alone (made storable, or retried apart from the others).
/// </summary>
// CA1001: the semaphore has no wait handle to free, and late finishers may still give back room after the host stopped.
#pragma warning disable CA1001
internal sealed class AckWriter
#pragma warning restore CA1001
{
    private readonly Channel<PendingAck> _channel = Channel.CreateUnbounded<PendingAck>(); // not single-reader: that one cannot count its items
    private readonly SemaphoreSlim _room;
    private readonly IJobWorkerStore _queue;
    private readonly SchedulingOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly JobFailureLog? _failures;
    private readonly Func<int> _inFlight;
    private readonly List<Task> _apart = [];
    private int _counted;

    // inFlight: how many jobs this host holds that could still finish and join the batch.
    public AckWriter(IJobWorkerStore queue, SchedulingOptions options, TimeProvider time, ILogger logger, Func<int>? inFlight = null, JobFailureLog? failures = null)
    {
        _failures = failures;
        _inFlight = inFlight ?? (static () => int.MaxValue);
        // Bounded for finishing jobs: when the database falls behind they wait here, their slots stay
        // taken and fetching slows, instead of piling up leased rows the writer cannot keep up with.
        // Releases and settlements (Enqueue) never wait and are never refused.
        _room = new SemaphoreSlim(Capacity(options));
        _queue = queue;
        _options = options;
        _time = time;
        _logger = logger;
    }

    /// <summary>How many acknowledgements of finished jobs may wait to be written.</summary>
    public static int Capacity(SchedulingOptions options) => Math.Max(options.AckBatchSize * 4, 1000);

    /// <summary>Set when the writer's loop has stopped for a reason other than shutdown; the health check reports it.</summary>
    public Exception? Failure { get; private set; }

    /// <summary>Acknowledgements queued or being written.</summary>
    public int Pending => _channel.Reader.Count + Volatile.Read(ref _counted);

    /// <summary>Queues an acknowledgement without waiting (shutdown and settle paths); never drops it.</summary>
    public void Enqueue(PendingAck ack)
    {
        if (!_channel.Writer.TryWrite(ack)) Log.AckNotQueued(_logger, ack.Ack.Lease.JobId);
    }

    /// <summary>
    /// Writes acknowledgements straight to the store in batches, not behind the finishing jobs'
    /// (releases at shutdown and of buffered jobs: another host may take them at once); what the
    /// store does not take is left to the buffered writer's retries, never dropped.
    /// </summary>
    public async Task WriteNowAsync(IReadOnlyList<PendingAck> acks)
    {
        foreach (var chunk in acks.Chunk(_options.AckBatchSize))
        {
            try
            {
                var results = await _queue.AcknowledgeAsync(chunk.Select(p => p.Ack).ToArray(), CancellationToken.None).ConfigureAwait(false);
                for (var i = 0; i < results.Count; i++) Applied(chunk[i], results[i]);
            }
            catch (Exception ex)
            {
                Log.AckWriteFailed(_logger, ex, chunk.Length, TimeSpan.Zero);
                foreach (var ack in chunk) Enqueue(ack);
            }
        }
    }

    /// <summary>
    /// With no flush interval, writes the acknowledgement from the caller at once (many in
    /// parallel, one per finishing job); a failed write falls back to the buffered writer, which
    /// retries, splits and sanitises.
    /// </summary>
    public async Task AcknowledgeAsync(PendingAck ack)
    {
        if (_options.AckFlushInterval > TimeSpan.Zero)
        {
            await _room.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            if (!_channel.Writer.TryWrite(ack with { HoldsRoom = true }))
            {
                _room.Release();
                Log.AckNotQueued(_logger, ack.Ack.Lease.JobId);
            }

            return;
        }

        try
        {
            var result = await _queue.AcknowledgeAsync([ack.Ack], CancellationToken.None).ConfigureAwait(false);
            Applied(ack, result[0]);
        }
        catch (Exception ex)
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
                while (batch.Count < _options.AckBatchSize && reader.TryRead(out var ack))
                {
                    batch.Add(ack);
                    Interlocked.Increment(ref _counted);
                }

                try { await WriteAsync(batch.ToArray(), abort).ConfigureAwait(false); }
                finally
                {
                    foreach (var written in batch) Taken(written);
                    batch.Clear();
                }
            }

            Task[] apart;
            lock (_apart) apart = [.. _apart];
            await Task.WhenAll(apart).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            var left = batch.Count + reader.Count;
            if (left > 0) Log.AcksAbandoned(_logger, left);
        }
        catch (Exception ex)
        {
            // Not expected (every write failure is handled above); say so where it is seen.
            Failure = ex;
            Log.AckWriterStopped(_logger, ex);
            throw;
        }
    }

    /// <summary>Counts what the store did with one acknowledgement; a stale one is logged, and a job the store made dead.</summary>
    public void Applied(PendingAck ack, AckResult result)
    {
        if (!result.Applied && !ack.Ack.CompletedInTransaction) Log.StaleAck(_logger, result.JobId);
        else if (result.State == JobState.Dead) _failures?.Dead(ack.Job, ack.Ack.Error);
        JobOutcomes.Applied(ack.Job, ack.Ack.Kind, result, ack.Ack.CompletedInTransaction);
    }

    private void Taken(PendingAck ack)
    {
        Interlocked.Decrement(ref _counted);
        if (ack.HoldsRoom) _room.Release();
    }

    private async Task WriteAsync(PendingAck[] part, CancellationToken abort)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var results = await _queue.AcknowledgeAsync(part.Select(p => p.Ack).ToArray(), abort).ConfigureAwait(false);
                for (var i = 0; i < results.Count; i++) Applied(part[i], results[i]);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException && AckFailure.IsAboutTheBatch(ex))
            {
                if (part.Length > 1)
                {
                    var half = part.Length / 2;
                    await WriteAsync(part[..half], abort).ConfigureAwait(false);
                    await WriteAsync(part[half..], abort).ConfigureAwait(false);
                    return;
                }

                await WriteAloneAsync(part[0], ex, abort).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                var delay = Backoff.Delay(attempt, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5));
                Log.AckWriteFailed(_logger, ex, part.Length, delay);
                await Task.Delay(delay, _time, abort).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One acknowledgement the store refused on its own.</summary>
    private async Task WriteAloneAsync(PendingAck ack, Exception refusal, CancellationToken abort)
    {
        if (AckFailure.IsAboutItsData(refusal))
        {
            // A value the store cannot encode: keep the outcome, with an error text that can be stored.
            Log.AckRefused(_logger, refusal, ack.Ack.Lease.JobId);
            var storable = ack with { Ack = ack.Ack with { Error = AckFailure.StorableError(ack.Ack.Error, refusal), Usage = null, RunDuration = null } };
            try
            {
                var result = await _queue.AcknowledgeAsync([storable.Ack], abort).ConfigureAwait(false);
                Applied(storable, result[0]);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Nothing more can be done from here: the job is rescued when its lease expires.
                Log.AckUnwritable(_logger, ex, ack.Ack.Lease.JobId);
            }

            return;
        }

        // A row the store could not lock in time (someone else's open transaction holds it): retried
        // apart, so the other acknowledgements keep flowing meanwhile.
        var retry = Task.Run(async () =>
        {
            for (var attempt = 1; ; attempt++)
            {
                var delay = Backoff.Delay(attempt, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(2));
                Log.AckWriteFailed(_logger, refusal, 1, delay);
                await Task.Delay(delay, _time, abort).ConfigureAwait(false);
                try
                {
                    var result = await _queue.AcknowledgeAsync([ack.Ack], abort).ConfigureAwait(false);
                    Applied(ack, result[0]);
                    return;
                }
                catch (Exception ex) when (ex is not OperationCanceledException) { refusal = ex; }
            }
        }, CancellationToken.None);
        lock (_apart)
        {
            _apart.RemoveAll(t => t.IsCompleted);
            _apart.Add(retry);
        }
    }
}

/// <summary>How the completer tells a store that is away from a store that refuses what a batch holds.</summary>
internal static class AckFailure
{
    /// <summary>
    /// True when the store answered about this batch (it is up): a value it could not encode, or a
    /// database error other than one about the server itself (connection, resources, shutdown,
    /// system: SQLSTATE classes 08, 53, 57, 58).
    /// </summary>
    public static bool IsAboutTheBatch(Exception ex) => IsAboutItsData(ex) || ex is System.Data.Common.DbException
    {
        SqlState: { Length: 5 } state,
    } && !(state.StartsWith("08", StringComparison.Ordinal) || state.StartsWith("53", StringComparison.Ordinal) || state.StartsWith("57", StringComparison.Ordinal) || state.StartsWith("58", StringComparison.Ordinal));

    /// <summary>True when the batch's own values could not be sent (encoding, conversion).</summary>
    public static bool IsAboutItsData(Exception ex) => ex is ArgumentException or FormatException or InvalidCastException or OverflowException
        || ex.InnerException is ArgumentException or FormatException or InvalidCastException or OverflowException;

    /// <summary>An error text any store can take: printable ASCII, the rest escaped, with why it was rewritten.</summary>
    public static string StorableError(string? error, Exception refusal)
    {
        var text = new System.Text.StringBuilder($"(the error text could not be stored as it was: {refusal.GetType().Name}; shown escaped) ");
        foreach (var c in (error ?? "").AsSpan(0, Math.Min(error?.Length ?? 0, 2000)))
        {
            if (c is >= ' ' and <= '~' or '\n' or '\t') text.Append(c);
            else text.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
        }

        return text.ToString();
    }
}
