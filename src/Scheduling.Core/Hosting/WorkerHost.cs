using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Scheduling.Hosting;

/// <summary>
/// Runs handlers for the configured queues: fetches in batches up to free capacity, batches
/// acknowledgements, extends leases by heartbeat, rescues expired leases, and on shutdown lets
/// running jobs finish within the timeout before cancelling and releasing the rest.
/// </summary>
internal sealed class WorkerHost : BackgroundService
{
    private static readonly JsonSerializerOptions DefaultJson = new(JsonSerializerDefaults.Web);

    private readonly IJobQueue _queue;
    private readonly JobHandlerRegistry _handlers;
    private readonly SchedulingOptions _options;
    private readonly QueueSignals _signals;
    private readonly IServiceProvider _services;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IEnumerable<IJobQueueInitializer> _initializers;
    private readonly ConcurrentDictionary<long, RunningJob> _running = new();
    private readonly JsonSerializerOptions _json;
    private readonly WorkerStatus _status;

    public WorkerHost(
        IJobQueue queue,
        JobHandlerRegistry handlers,
        IOptions<SchedulingOptions> options,
        QueueSignals signals,
        IServiceProvider services,
        TimeProvider time,
        IEnumerable<IJobQueueInitializer> initializers,
        WorkerStatus status,
        ILogger<WorkerHost>? logger = null)
    {
        _status = status;
        _queue = queue;
        _handlers = handlers;
        _options = options.Value;
        _signals = signals;
        _services = services;
        _time = time;
        _initializers = initializers;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _json = _options.Queue.JsonSerializerOptions ?? DefaultJson;
        WorkerId = _options.WorkerId ?? $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";
    }

    public string WorkerId { get; }

    /// <summary>Jobs this host is running now.</summary>
    public int RunningCount => _running.Count;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await InitializeStoreAsync(stoppingToken).ConfigureAwait(false);
        if (!_options.RunWorkers || stoppingToken.IsCancellationRequested) return;

        using var maintenance = new CancellationTokenSource();
        using var abortAcks = new CancellationTokenSource();
        var acks = new AckWriter(_queue, _options, _time, _logger, () => _running.Count);
        var ackLoop = Task.Run(() => acks.RunAsync(abortAcks.Token), CancellationToken.None);
        var heartbeat = Task.Run(() => HeartbeatLoopAsync(maintenance.Token), CancellationToken.None);
        var rescue = Task.Run(() => RescueLoopAsync(maintenance.Token), CancellationToken.None);

        var work = _options.EffectiveWork;
        var queues = work.SelectMany(w => w.Shares).Select(s => s.Queue).ToArray();
        _status.Started(WorkerId, queues);
        var depths = Task.Run(() => DepthLoopAsync(maintenance.Token), CancellationToken.None);
        var retention = Task.Run(() => RetentionLoopAsync(maintenance.Token), CancellationToken.None);
        Log.WorkerStarted(_logger, WorkerId, string.Join(", ", queues));
        var fetchLoops = work.SelectMany(w => StartFetchLoops(w.Name, w.Shares, w.Options, acks, stoppingToken)).ToArray();
        await Task.WhenAll(fetchLoops).ConfigureAwait(false);

        // Graceful shutdown: no more fetching; let running jobs finish, then cancel and release the rest.
        var released = await DrainAsync().ConfigureAwait(false);
        acks.Complete();
        if (await Task.WhenAny(ackLoop, Task.Delay(TimeSpan.FromSeconds(10), _time, CancellationToken.None)).ConfigureAwait(false) != ackLoop)
            await abortAcks.CancelAsync().ConfigureAwait(false);
        await ackLoop.ConfigureAwait(false);
        await maintenance.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(heartbeat, rescue, depths, retention).ConfigureAwait(false);
        _status.Stopped();
        Log.WorkerStopped(_logger, WorkerId, released);
    }

    private async Task InitializeStoreAsync(CancellationToken cancellationToken)
    {
        foreach (var initializer in _initializers)
        {
            for (var attempt = 1; !cancellationToken.IsCancellationRequested; attempt++)
            {
                try
                {
                    await initializer.InitializeAsync(cancellationToken).ConfigureAwait(false);
                    break;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    var delay = Backoff.Delay(attempt, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30));
                    Log.InitializeFailed(_logger, ex, delay);
                    try { await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false); }
                    catch (OperationCanceledException) { return; }
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
            }
        }
    }

    /// <summary>
    /// One fetch loop per queue, or several sharing the queue's slots when the fetch batch is too
    /// small to keep the prefetch full with one round trip at a time (e.g. a batch of 1).
    /// </summary>
    private Task[] StartFetchLoops(string name, QueueShare[] shares, QueueWorkerOptions options, AckWriter acks, CancellationToken stoppingToken)
    {
        _signals.Join(shares.Select(s => s.Queue).ToArray()); // a group wakes on work in any of its queues
        var sizing = new PrefetchSizing(options);
        var slots = new SemaphoreSlim(options.Concurrency, options.Concurrency);
        var tasks = Enumerable.Range(0, sizing.Loops)
            .Select(_ => Task.Run(() => FetchLoopAsync(name, shares, slots, options.Concurrency, sizing, acks, stoppingToken), CancellationToken.None))
            .ToArray();
        _ = Task.WhenAll(tasks).ContinueWith(_ => slots.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        return tasks;
    }

    private async Task FetchLoopAsync(string queue, QueueShare[] shares, SemaphoreSlim slots, int concurrency, PrefetchSizing sizing, AckWriter acks, CancellationToken stoppingToken)
    {
        var held = new StrongBox<int>(); // this loop's jobs that are running
        var buffer = new Queue<RunningJob>();
        using var finished = new SemaphoreSlim(0);
        var context = new FetchContext(queue, shares, sizing, () => buffer.Count == 0, finished, stoppingToken);
        var drained = false; // the last fetch came back short: wait for the buffer to empty or a wake-up
        var failures = 0;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                while (buffer.Count > 0 && slots.Wait(0, CancellationToken.None)) Start(buffer.Dequeue(), slots, held, acks, context);
                var room = sizing.PerLoop - buffer.Count - Volatile.Read(ref held.Value);
                if (room > 0 && (buffer.Count == 0 || (!drained && buffer.Count < concurrency)))
                {
                    var wanted = Math.Min(room, sizing.MaxFetch);
                    IReadOnlyList<AcquiredJob> jobs;
                    try
                    {
                        var startedAt = _time.GetUtcNow();
                        jobs = await _queue.AcquireAsync(new AcquireRequest(shares, WorkerId, wanted, _options.LeaseDuration), stoppingToken).ConfigureAwait(false);
                        failures = 0;
                        foreach (var running in Take(jobs, context, startedAt)) buffer.Enqueue(running);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                    {
                        var delay = Backoff.Delay(++failures, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10));
                        Log.FetchFailed(_logger, ex, queue, delay);
                        await Task.Delay(delay, _time, stoppingToken).ConfigureAwait(false);
                        continue;
                    }

                    drained = jobs.Count < wanted;
                    if (buffer.Count == 0 && jobs.Count == 0)
                    {
                        await _signals.WaitAsync(shares[0].Queue, _options.PollInterval, stoppingToken).ConfigureAwait(false);
                        drained = false;
                    }

                    continue;
                }

                // Jobs wait locally for a slot, or every held job is running: wait for a slot to free.
                if (buffer.Count == 0 && Volatile.Read(ref held.Value) == 0)
                {
                    // Other loops hold every slot and this one has nothing: wait for work, not for a slot.
                    await _signals.WaitAsync(shares[0].Queue, _options.PollInterval, stoppingToken).ConfigureAwait(false);
                    continue;
                }

                if (buffer.Count == 0)
                {
                    // This loop is full with its own running jobs: wait for one of them to finish. Waiting
                    // for a slot instead would spin while other loops leave slots free.
                    await context.Finished.WaitAsync(_options.PollInterval, stoppingToken).ConfigureAwait(false);
                    continue;
                }

                await slots.WaitAsync(stoppingToken).ConfigureAwait(false);
                if (buffer.Count > 0) Start(buffer.Dequeue(), slots, held, acks, context);
                else slots.Release();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            // Jobs fetched but never started go back at once, their attempt not counted.
            while (buffer.TryDequeue(out var waiting))
            {
                _running.TryRemove(waiting.Job.Id, out _);
                acks.Enqueue(new JobAck(waiting.Job.Lease, JobAckKind.Released));
                waiting.Dispose();
            }
        }
    }

    /// <summary>Runs a fetched job on a slot already taken; one stopped while it waited is settled instead.</summary>
    private void Start(RunningJob running, SemaphoreSlim slots, StrongBox<int> held, AckWriter acks, FetchContext context)
    {
        switch (running.StopReason)
        {
            case StopReason.None:
                Interlocked.Increment(ref held.Value);
                _ = Task.Run(async () =>
                {
                    try { await RunJobsAsync(running, slots, acks, context).ConfigureAwait(false); }
                    finally
                    {
                        Interlocked.Decrement(ref held.Value);
                        try { context.Finished.Release(); }
                        catch (ObjectDisposedException) { } // the loop has ended (shutdown)
                    }
                }, CancellationToken.None);
                return;
            case StopReason.CancellationRequested:
                acks.Enqueue(new JobAck(running.Job.Lease, JobAckKind.Cancelled));
                break;
        }

        _running.TryRemove(running.Job.Id, out _);
        running.Dispose();
        slots.Release();
    }

    /// <summary>What a fetch loop's jobs need to know to fetch their own successors.</summary>
    private sealed record FetchContext(string Name, QueueShare[] Shares, PrefetchSizing Sizing, Func<bool> NothingBuffered, SemaphoreSlim Finished, CancellationToken Stopping);

    /// <summary>
    /// Runs a job on its slot. With immediate acknowledgements and nothing fetched ahead, the slot then
    /// acknowledges and takes its next job in one round trip (one commit instead of two) and runs it,
    /// until the queue has nothing due or the host stops.
    /// </summary>
    private async Task RunJobsAsync(RunningJob first, SemaphoreSlim slots, AckWriter acks, FetchContext context)
    {
        for (RunningJob? running = first; running is not null;)
        {
            var ack = await RunJobAsync(running, context.Sizing).ConfigureAwait(false);
            if (ack is null) break;
            if (_options.AckFlushInterval > TimeSpan.Zero || context.Stopping.IsCancellationRequested || !context.NothingBuffered())
            {
                await acks.AcknowledgeAsync(ack.Value).ConfigureAwait(false);
                break;
            }

            running = await AcknowledgeAndTakeNextAsync(ack.Value, acks, context).ConfigureAwait(false);
        }

        slots.Release();
    }

    private async Task<RunningJob?> AcknowledgeAndTakeNextAsync(JobAck ack, AckWriter acks, FetchContext context)
    {
        AcknowledgeAndAcquireResult result;
        var startedAt = _time.GetUtcNow();
        try
        {
            result = await _queue.AcknowledgeAndAcquireAsync([ack], new AcquireRequest(context.Shares, WorkerId, 1, _options.LeaseDuration), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not ArgumentException)
        {
            Log.AckWriteFailed(_logger, ex, 1, TimeSpan.Zero);
            acks.Enqueue(ack); // the buffered writer retries it; a job leased by a reply that was lost is rescued
            return null;
        }

        if (!result.Acknowledged[0].Applied) Log.StaleAck(_logger, ack.Lease.JobId);
        return Take(result.Acquired, context, startedAt) is [var next] ? next : null;
    }

    /// <summary>Takes charge of freshly acquired jobs, however they were fetched: status, receive span, metrics, the running set.</summary>
    private RunningJob[] Take(IReadOnlyList<AcquiredJob> jobs, FetchContext context, DateTimeOffset startedAt)
    {
        var fetchedAt = _time.GetUtcNow();
        foreach (var share in context.Shares) _status.Fetched(share.Queue, fetchedAt);
        var received = JobTelemetry.Received(context.Name, jobs.Count, startedAt);
        if (context.Shares.Length == 1)
        {
            if (jobs.Count > 0) SchedulingMetrics.Acquired.Add(jobs.Count, new KeyValuePair<string, object?>("queue", context.Name));
        }
        else
        {
            foreach (var group in jobs.GroupBy(j => j.Queue, StringComparer.Ordinal))
                SchedulingMetrics.Acquired.Add(group.Count(), new KeyValuePair<string, object?>("queue", group.Key));
        }

        var taken = new RunningJob[jobs.Count];
        for (var i = 0; i < jobs.Count; i++)
        {
            taken[i] = new RunningJob(jobs[i], received);
            _running[jobs[i].Id] = taken[i];
        }

        return taken;
    }

    /// <summary>Runs one job's handler and returns its acknowledgement, or null when there is none to write.</summary>
    private async Task<JobAck?> RunJobAsync(RunningJob running, PrefetchSizing sizing)
    {
        var job = running.Job;
        var usage = new ResourceUsage();
        var started = _time.GetTimestamp();
        using var activity = JobTelemetry.StartProcess(job, running.Received);
        SchedulingMetrics.QueueWait.Record(Math.Max(0, (_time.GetUtcNow() - job.RunAt).TotalSeconds), new KeyValuePair<string, object?>("queue", job.Queue), new KeyValuePair<string, object?>("kind", job.Kind));
        JobAck? ack;
        try
        {
            if (!_handlers.TryGet(job.Kind, out var registration))
            {
                Log.UnknownKind(_logger, job.Kind, job.Id, job.Queue);
                var known = string.Join(", ", _handlers.Kinds.Order(StringComparer.Ordinal));
                ack = JobAck.Failure(job.Lease, $"No handler is registered for job kind '{job.Kind}' on worker {WorkerId}. Registered kinds: {(known.Length == 0 ? "(none)" : known)}.");
            }
            else
            {
                await registration.Invoke(_services, job, _json, usage, running.Token).ConfigureAwait(false);
                ack = JobAck.Success(job.Lease);
            }
        }
        catch (OperationCanceledException) when (running.StopReason != StopReason.None)
        {
            ack = running.StopReason switch
            {
                StopReason.CancellationRequested => new JobAck(job.Lease, JobAckKind.Cancelled),
                StopReason.Shutdown => new JobAck(job.Lease, JobAckKind.Released),
                _ => null, // lease lost: the job belongs to someone else now
            };
        }
        catch (PermanentJobFailureException ex)
        {
            Log.JobFailed(_logger, ex, job.Id, job.Kind, job.Attempt);
            ack = JobAck.Failure(job.Lease, ex.ToString(), retryable: false);
        }
        catch (Exception ex)
        {
            Log.JobFailed(_logger, ex, job.Id, job.Kind, job.Attempt);
            ack = JobAck.Failure(job.Lease, ex.ToString());
        }
        finally
        {
            _running.TryRemove(job.Id, out _);
            running.Dispose();
        }

        var elapsed = _time.GetElapsedTime(started);
        sizing.Observe(elapsed);
        RecordOutcome(job, ack, elapsed, activity);
        if (ack is not { } value || running.Released) return null;
        if (job.Allocation is not null)
        {
            usage.ExitCode ??= value.Kind == JobAckKind.Succeeded ? 0 : 1;
            value = value with { Usage = usage, RunDuration = _time.GetElapsedTime(started) };
        }

        return value;
    }

    private static void RecordOutcome(AcquiredJob job, JobAck? ack, TimeSpan elapsed, System.Diagnostics.Activity? activity)
    {
        var queue = new KeyValuePair<string, object?>("queue", job.Queue);
        var kind = new KeyValuePair<string, object?>("kind", job.Kind);
        string outcome;
        switch (ack?.Kind)
        {
            case JobAckKind.Succeeded:
                outcome = "succeeded";
                SchedulingMetrics.Succeeded.Add(1, queue, kind);
                break;
            case JobAckKind.Failed:
                var retried = ack.Value.Retryable && job.Attempt < job.MaxAttempts;
                outcome = retried ? "retried" : "dead";
                SchedulingMetrics.Failed.Add(1, queue, kind);
                (retried ? SchedulingMetrics.Retried : SchedulingMetrics.Dead).Add(1, queue, kind);
                activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, Truncate(ack.Value.Error));
                break;
            case JobAckKind.Cancelled:
                outcome = "cancelled";
                SchedulingMetrics.Cancelled.Add(1, queue, kind);
                break;
            case JobAckKind.Released:
                outcome = "released";
                break;
            default:
                outcome = "lease_lost";
                break;
        }

        SchedulingMetrics.RunDuration.Record(elapsed.TotalSeconds, queue, kind, new KeyValuePair<string, object?>("outcome", outcome));
        activity?.SetTag("scheduling.job.outcome", outcome);
    }

    private static string? Truncate(string? error) => error is { Length: > 200 } ? error[..200] : error;

    private async Task<int> DrainAsync()
    {
        if (_running.IsEmpty) return 0;
        var deadline = _time.GetUtcNow() + _options.ShutdownTimeout;
        while (!_running.IsEmpty && _time.GetUtcNow() < deadline)
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time, CancellationToken.None).ConfigureAwait(false);
        if (_running.IsEmpty) return 0;

        var left = _running.Values.ToArray();
        Log.ShutdownCancelling(_logger, left.Length);
        foreach (var running in left) running.Stop(StopReason.Shutdown);

        // Handlers that honour cancellation release their own job; give them a moment, then
        // release whatever still runs so another worker can take it at once.
        var grace = _time.GetUtcNow() + TimeSpan.FromSeconds(2);
        while (!_running.IsEmpty && _time.GetUtcNow() < grace)
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time, CancellationToken.None).ConfigureAwait(false);
        var stuck = _running.Values.Where(r => r.MarkReleased()).Select(r => new JobAck(r.Job.Lease, JobAckKind.Released)).ToArray();
        if (stuck.Length > 0)
        {
            try { await _queue.AcknowledgeAsync(stuck, CancellationToken.None).ConfigureAwait(false); }
            catch (Exception ex) when (ex is not OperationCanceledException) { Log.AckWriteFailed(_logger, ex, stuck.Length, TimeSpan.Zero); }
        }

        return left.Length;
    }

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var delay = _options.HeartbeatInterval;
            try
            {
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                // Only the leases this host knows it holds: one acquired in a statement whose reply was
                // lost is not kept alive here, so it expires and is rescued.
                var holding = _running.Values.ToArray();
                if (holding.Length == 0) continue;
                var held = await _queue.HeartbeatAsync(WorkerId, holding.Select(r => r.Job.Lease).ToArray(), _options.LeaseDuration, cancellationToken).ConfigureAwait(false);
                failures = 0;
                var heldById = held.ToDictionary(h => h.JobId);
                foreach (var running in holding)
                {
                    if (heldById.TryGetValue(running.Job.Id, out var lease))
                    {
                        if (lease.CancellationRequested) running.Stop(StopReason.CancellationRequested);
                    }
                    else if (_running.ContainsKey(running.Job.Id)) // not finished meanwhile
                    {
                        Log.LeaseLost(_logger, running.Job.Id);
                        running.Stop(StopReason.LeaseLost);
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                var retry = Backoff.Delay(++failures, TimeSpan.FromMilliseconds(200), _options.HeartbeatInterval);
                Log.HeartbeatFailed(_logger, ex, retry);
                try { await Task.Delay(retry, _time, cancellationToken).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    private async Task RescueLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.RescueInterval, _time, cancellationToken).ConfigureAwait(false);
                var rescued = await _queue.RescueExpiredLeasesAsync(cancellationToken).ConfigureAwait(false);
                if (rescued > 0)
                {
                    SchedulingMetrics.Rescued.Add(rescued);
                    Log.Rescued(_logger, rescued);
                    _signals.NotifyAll();
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.RescueFailed(_logger, ex);
            }
        }
    }

    /// <summary>Deletes finished jobs past their retention in bounded batches, so tables and memory stay flat over long runs.</summary>
    private async Task RetentionLoopAsync(CancellationToken cancellationToken)
    {
        if (_queue is not IJobRetention store || _options.FinishedJobRetention is not { } retention) return;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.RetentionInterval, _time, cancellationToken).ConfigureAwait(false);
                var cutoff = _time.GetUtcNow() - retention;
                var total = 0;
                for (var round = 0; round < 100; round++)
                {
                    var deleted = await store.PurgeFinishedAsync(cutoff, _options.RetentionBatchSize, cancellationToken).ConfigureAwait(false);
                    total += deleted;
                    if (deleted < _options.RetentionBatchSize) break;
                }

                if (total > 0) Log.Purged(_logger, total, retention);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.PurgeFailed(_logger, ex);
            }
        }
    }

    /// <summary>Refreshes the cached queue depths the gauges and the health check read, so a scrape never queries the database.</summary>
    private async Task DepthLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                _status.Depths(await _queue.GetQueueStatsAsync(cancellationToken).ConfigureAwait(false), _time.GetUtcNow());
                await Task.Delay(_options.StatsInterval, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _status.DepthsFailed(ex);
                Log.StatsFailed(_logger, ex);
                try { await Task.Delay(_options.StatsInterval, _time, cancellationToken).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    private enum StopReason
    {
        None = 0,
        CancellationRequested = 1,
        Shutdown = 2,
        LeaseLost = 3,
    }

    private sealed class RunningJob : IDisposable
    {
        private readonly CancellationTokenSource _cts = new();
        private int _stopReason;
        private int _released;

        public RunningJob(AcquiredJob job, System.Diagnostics.Activity? received)
        {
            Job = job;
            Received = received;
            Token = _cts.Token;
        }

        public AcquiredJob Job { get; }
        public System.Diagnostics.Activity? Received { get; }
        public CancellationToken Token { get; }
        public StopReason StopReason => (StopReason)Volatile.Read(ref _stopReason);
        public bool Released => Volatile.Read(ref _released) == 1;

        public void Stop(StopReason reason)
        {
            if (Interlocked.CompareExchange(ref _stopReason, (int)reason, 0) != 0) return;
            try { _cts.Cancel(); }
            catch (ObjectDisposedException) { }
        }

        /// <summary>Claims the right to release the job on the handler's behalf; false if it already finished.</summary>
        public bool MarkReleased() => Interlocked.Exchange(ref _released, 1) == 0;

        public void Dispose() => _cts.Dispose();
    }
}
