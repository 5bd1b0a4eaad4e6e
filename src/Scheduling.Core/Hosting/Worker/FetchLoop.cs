using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>
/// The producer of one queue (or weighted group of queues): fetches in batches up to what its
/// slots and prefetch allow, hands each job to the <see cref="JobRunner"/> on a free slot, and on
/// stop gives back what it fetched but never started.
/// </summary>
internal sealed class FetchLoop
{
    private readonly IJobWorkerStore _store;
    private readonly JobRunner _runner;
    private readonly AckWriter _acks;
    private readonly RunningJobs _running;
    private readonly QueueSignals _signals;
    private readonly WorkerStatus _status;
    private readonly SchedulingOptions _options;
    private readonly string _workerId;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _name;
    private readonly QueueShare[] _shares;
    private readonly int _concurrency;
    private readonly PrefetchSizing _sizing;
    private readonly HostCapacity _capacity;

    public FetchLoop((string Name, QueueShare[] Shares, QueueWorkerOptions Options) work, IJobWorkerStore store, JobRunner runner, AckWriter acks, RunningJobs running, QueueSignals signals, WorkerStatus status,
        SchedulingOptions options, string workerId, TimeProvider time, ILogger logger, HostCapacity capacity)
    {
        _capacity = capacity;
        _store = store;
        _runner = runner;
        _acks = acks;
        _running = running;
        _signals = signals;
        _status = status;
        _options = options;
        _workerId = workerId;
        _time = time;
        _logger = logger;
        _name = work.Name;
        _shares = work.Shares;
        _concurrency = work.Options.Concurrency;
        _sizing = new PrefetchSizing(work.Options);
    }

    /// <summary>
    /// One loop, or several sharing the slots when the fetch batch is too small to keep the
    /// prefetch full with one round trip at a time (e.g. a batch of 1).
    /// </summary>
    public Task[] Start(CancellationToken stoppingToken)
    {
        _signals.Join(_shares.Select(s => s.Queue).ToArray()); // a group wakes on work in any of its queues
        var slots = new SemaphoreSlim(_concurrency, _concurrency);
        var tasks = Enumerable.Range(0, _sizing.Loops)
            .Select(_ => Task.Run(() => RunAsync(slots, stoppingToken), CancellationToken.None))
            .ToArray();
        _ = Task.WhenAll(tasks).ContinueWith(_ => slots.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        return tasks;
    }

    private async Task RunAsync(SemaphoreSlim slots, CancellationToken stoppingToken)
    {
        var held = new StrongBox<int>(); // this loop's jobs that are running
        var buffer = new Queue<RunningJob>();
        using var finished = new SemaphoreSlim(0);
        var loop = new LoopState(() => buffer.Count == 0, finished, stoppingToken);
        var drained = false; // the last fetch came back short: wait for the buffer to empty or a wake-up
        var failures = 0;
        var gaveBack = false; // buffered jobs went back because every slot stayed busy
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                if (await GiveBackStaleAsync(buffer).ConfigureAwait(false)) gaveBack = true;
                while (buffer.Count > 0 && slots.Wait(0, CancellationToken.None)) Start(buffer.Dequeue(), slots, held, loop);
                if (slots.CurrentCount > 0) gaveBack = false;
                var room = _sizing.PerLoop - buffer.Count - Volatile.Read(ref held.Value);
                // After giving jobs back for want of a slot, fetch again only once a slot frees: taking the
                // same jobs back at once would only churn them while another host could run them.
                if (room > 0 && !gaveBack && (buffer.Count == 0 || (!drained && buffer.Count < _concurrency)))
                {
                    var wanted = Math.Min(room, _sizing.MaxFetch);
                    IReadOnlyList<AcquiredJob> jobs;
                    try
                    {
                        var startedAt = _time.GetUtcNow();
                        // Not cancelled by shutdown: an acquisition cancelled in flight may still commit, leasing jobs
                        // this host would never hear of. Let it answer; what it took is then given back at once.
                        jobs = await _capacity.ClaimAsync(
                            new AcquireRequest(_shares, _workerId, wanted, _options.LeaseDuration),
                            request => _store.AcquireAsync(request, CancellationToken.None).AsTask(),
                            acquired => { foreach (var job in Take(acquired, startedAt)) buffer.Enqueue(job); }).ConfigureAwait(false);
                        failures = 0;
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                    {
                        var delay = Backoff.Delay(++failures, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10));
                        Log.FetchFailed(_logger, ex, _name, delay);
                        await Task.Delay(delay, _time, stoppingToken).ConfigureAwait(false);
                        continue;
                    }

                    drained = jobs.Count < wanted;
                    if (buffer.Count == 0 && jobs.Count == 0)
                    {
                        await _signals.WaitAsync(_shares[0].Queue, _options.PollInterval, stoppingToken).ConfigureAwait(false);
                        drained = false;
                    }

                    continue;
                }

                // Jobs wait locally for a slot, or every held job is running: wait for a slot to free.
                if (buffer.Count == 0 && Volatile.Read(ref held.Value) == 0)
                {
                    // Other loops hold every slot and this one has nothing: wait for work, not for a slot.
                    await _signals.WaitAsync(_shares[0].Queue, _options.PollInterval, stoppingToken).ConfigureAwait(false);
                    continue;
                }

                if (buffer.Count == 0)
                {
                    // This loop is full with its own running jobs: wait for one of them to finish. Waiting
                    // for a slot instead would spin while other loops leave slots free.
                    await loop.Finished.WaitAsync(_options.PollInterval, stoppingToken).ConfigureAwait(false);
                    continue;
                }

                // Every slot is busy: wait for one, but not past the moment the oldest buffered job must go back.
                if (!await slots.WaitAsync(UntilStale(buffer.Peek()), stoppingToken).ConfigureAwait(false)) continue;
                if (await GiveBackStaleAsync(buffer).ConfigureAwait(false)) gaveBack = true;
                if (buffer.Count > 0) Start(buffer.Dequeue(), slots, held, loop);
                else slots.Release();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            await ReleaseUnstartedAsync(buffer).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A fetched job is started only while at least half its lease is left, so its first heartbeat
    /// (at most a third of the lease later) comes in time. Buffered jobs are not heartbeated: one that
    /// waited that long (every slot busy with long or hung handlers) goes back, uncharged, for
    /// another host to take.
    /// </summary>
    private TimeSpan StaleAfter => _options.LeaseDuration / 2;

    private TimeSpan UntilStale(RunningJob job)
    {
        var left = job.FetchedAt + StaleAfter - _time.GetUtcNow();
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    private async Task<bool> GiveBackStaleAsync(Queue<RunningJob> buffer)
    {
        if (buffer.Count == 0 || UntilStale(buffer.Peek()) > TimeSpan.Zero) return false;
        var stale = new Queue<RunningJob>();
        while (buffer.Count > 0 && UntilStale(buffer.Peek()) == TimeSpan.Zero) stale.Enqueue(buffer.Dequeue()); // oldest first
        Log.BufferedJobsGivenBack(_logger, stale.Count, _name);
        await ReleaseUnstartedAsync(stale).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Jobs fetched but never started go back at once, their attempt not counted
    /// (<see cref="AckWriter.WriteNowAsync"/>).
    /// </summary>
    private async Task ReleaseUnstartedAsync(Queue<RunningJob> buffer)
    {
        var unstarted = new List<PendingAck>(buffer.Count);
        while (buffer.TryDequeue(out var waiting))
        {
            _running.Remove(waiting);
            unstarted.Add(new PendingAck(new JobAck(waiting.Job.Lease, JobAckKind.Released), waiting.Job));
            waiting.Dispose();
        }

        await _acks.WriteNowAsync(unstarted).ConfigureAwait(false);
    }

    /// <summary>Runs a fetched job on a slot already taken; one stopped while it waited is settled instead.</summary>
    private void Start(RunningJob job, SemaphoreSlim slots, StrongBox<int> held, LoopState loop)
    {
        switch (job.StopReason)
        {
            case StopReason.None:
                Interlocked.Increment(ref held.Value);
                _ = Task.Run(async () =>
                {
                    try { await RunJobsAsync(job, slots, loop).ConfigureAwait(false); }
                    finally
                    {
                        Interlocked.Decrement(ref held.Value);
                        try { loop.Finished.Release(); }
                        catch (ObjectDisposedException) { } // the loop has ended (shutdown)
                    }
                }, CancellationToken.None);
                return;
            case StopReason.CancellationRequested:
                _acks.Enqueue(new PendingAck(new JobAck(job.Job.Lease, JobAckKind.Cancelled), job.Job));
                break;
        }

        _running.Remove(job);
        job.Dispose();
        slots.Release();
    }

    /// <summary>What a loop's jobs need to know to fetch their own successors.</summary>
    private sealed record LoopState(Func<bool> NothingBuffered, SemaphoreSlim Finished, CancellationToken Stopping);

    /// <summary>
    /// Runs a job on its slot. With immediate acknowledgements and nothing fetched ahead, the slot then
    /// acknowledges and takes its next job in one round trip (one commit instead of two) and runs it,
    /// until the queue has nothing due or the host stops.
    /// </summary>
    private async Task RunJobsAsync(RunningJob first, SemaphoreSlim slots, LoopState loop)
    {
        // The slot counts as in use until its last acknowledgement is queued, so a draining host
        // waits for it (a job leaves the running set before its acknowledgement is written).
        _running.EnterSlot();
        try
        {
            for (RunningJob? job = first; job is not null;)
            {
                var ack = await _runner.RunAsync(job, _sizing).ConfigureAwait(false);
                if (ack is null) break;
                var pending = new PendingAck(ack.Value, job.Job);
                if (_options.AckFlushInterval > TimeSpan.Zero || loop.Stopping.IsCancellationRequested || !loop.NothingBuffered())
                {
                    await _acks.AcknowledgeAsync(pending).ConfigureAwait(false);
                    break;
                }

                job = await AcknowledgeAndTakeNextAsync(pending).ConfigureAwait(false);
            }
        }
        finally
        {
            _running.ExitSlot();
            slots.Release();
        }
    }

    private async Task<RunningJob?> AcknowledgeAndTakeNextAsync(PendingAck ack)
    {
        AcknowledgeAndAcquireResult result;
        RunningJob[] next = [];
        var startedAt = _time.GetUtcNow();
        try
        {
            result = await _capacity.ClaimAsync(
                new AcquireRequest(_shares, _workerId, 1, _options.LeaseDuration),
                request => _store.AcknowledgeAndAcquireAsync([ack.Ack], request, CancellationToken.None).AsTask(),
                acknowledged => next = Take(acknowledged.Acquired, startedAt)).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.AckWriteFailed(_logger, ex, 1, TimeSpan.Zero);
            _acks.Enqueue(ack); // the buffered writer retries, splits or sanitises it; a job leased by a reply that was lost is rescued
            return null;
        }

        _acks.Applied(ack, result.Acknowledged[0]);
        return next is [var job] ? job : null;
    }

    /// <summary>Takes charge of freshly acquired jobs, however they were fetched: status, receive span, metrics, the running set.</summary>
    private RunningJob[] Take(IReadOnlyList<AcquiredJob> jobs, DateTimeOffset startedAt)
    {
        var fetchedAt = _time.GetUtcNow();
        foreach (var share in _shares) _status.Fetched(share.Queue, fetchedAt);
        var received = JobTelemetry.Received(_name, jobs.Count, startedAt);
        if (_shares.Length == 1)
        {
            if (jobs.Count > 0) SchedulingMetrics.Acquired.Add(jobs.Count, new KeyValuePair<string, object?>("queue", _name));
        }
        else
        {
            foreach (var group in jobs.GroupBy(j => j.Queue, StringComparer.Ordinal))
                SchedulingMetrics.Acquired.Add(group.Count(), new KeyValuePair<string, object?>("queue", group.Key));
        }

        var taken = new RunningJob[jobs.Count];
        for (var i = 0; i < jobs.Count; i++)
        {
            taken[i] = new RunningJob(jobs[i], received, startedAt); // the lease began no later than the fetch did
            _running.Add(taken[i]);
        }

        return taken;
    }
}
