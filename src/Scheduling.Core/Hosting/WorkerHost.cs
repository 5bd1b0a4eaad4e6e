using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Scheduling.Hosting;

/// <summary>
/// The host of the worker roles: prepares the store, starts the producers (<see cref="FetchLoop"/>),
/// the completer (<see cref="AckWriter"/>), the lease keeper and the maintenance services, and on
/// shutdown lets running jobs finish within the timeout before cancelling and releasing the rest.
/// </summary>
internal sealed class WorkerHost : BackgroundService
{
    private readonly IJobQueue _queue;
    private readonly IServiceProvider _services;
    private readonly SchedulingOptions _options;
    private readonly QueueSignals _signals;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IEnumerable<IJobQueueInitializer> _initializers;
    private readonly RunningJobs _running = new();
    private readonly WorkerStatus _status;
    private readonly JobRunner _runner;
    private readonly JobFailureLog _failures;
    private readonly HostCapacity _capacity;

    public WorkerHost(
        IJobQueue queue,
        JobExecutor executor,
        IOptions<SchedulingOptions> options,
        QueueSignals signals,
        IServiceProvider services,
        TimeProvider time,
        IEnumerable<IJobQueueInitializer> initializers,
        WorkerStatus status,
        ILogger<WorkerHost>? logger = null,
        ILoggerFactory? loggerFactory = null)
    {
        _status = status;
        _queue = queue;
        _services = services;
        _options = options.Value;
        _signals = signals;
        _time = time;
        _initializers = initializers;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        WorkerId = _options.WorkerId ?? $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";
        _failures = new JobFailureLog(loggerFactory?.CreateLogger(JobFailureLog.Category) ?? NullLogger.Instance, time);
        _runner = new JobRunner(executor, _options, _running, WorkerId, time, _logger, _failures,
            _options.ObserveInProcessUsage ? new InProcessUsage(LinuxProcessProbe.ForThisSystem()) : null);
        _capacity = new HostCapacity(HostCapacity.Declared(_options), _running);
    }

    public string WorkerId { get; }

    /// <inheritdoc />
    public override void Dispose()
    {
        _capacity.Dispose();
        base.Dispose();
    }

    /// <summary>Jobs this host is running now.</summary>
    public int RunningCount => _running.Count;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await InitializeStoreAsync(stoppingToken).ConfigureAwait(false);
        if (!_options.RunWorkers || stoppingToken.IsCancellationRequested) return;

        // Resolved only when this host runs workers: an application that only enqueues needs no worker store.
        var store = _services.GetRequiredService<IJobWorkerStore>();
        using var maintenance = new CancellationTokenSource();
        using var abortAcks = new CancellationTokenSource();
        var acks = new AckWriter(store, _options, _time, _logger, () => _running.Count, _failures);
        var ackLoop = Task.Run(() => acks.RunAsync(abortAcks.Token), CancellationToken.None);
        _ = ackLoop.ContinueWith(t => _status.CompleterStopped(t.Exception!.GetBaseException()), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        var work = _options.EffectiveWork;
        var queues = work.SelectMany(w => w.Shares).Select(s => s.Queue).ToArray();
        _status.Started(WorkerId, queues);
        var reporter = new HostReporter(store, new WorkerHostInfo(WorkerId, queues.Distinct(StringComparer.Ordinal).ToArray(), _capacity.Total), _options, _time, _logger);
        var services = MaintenanceServices(store).Append(reporter).Select(s => Task.Run(() => s.RunAsync(maintenance.Token), CancellationToken.None)).ToArray();
        Log.WorkerStarted(_logger, WorkerId, string.Join(", ", queues));
        var fetchLoops = work
            .SelectMany(w => new FetchLoop(w, store, _runner, acks, _running, _signals, _status, _options, WorkerId, _time, _logger, _capacity).Start(stoppingToken))
            .ToArray();
        await Task.WhenAll(fetchLoops).ConfigureAwait(false);

        // Graceful shutdown: no more fetching; let running jobs finish, then cancel and release the rest.
        var released = await DrainAsync(acks).ConfigureAwait(false);
        acks.Complete();
        if (await Task.WhenAny(ackLoop, Task.Delay(TimeSpan.FromSeconds(10), _time, CancellationToken.None)).ConfigureAwait(false) != ackLoop)
            await abortAcks.CancelAsync().ConfigureAwait(false);
        await ackLoop.ConfigureAwait(false);
        await maintenance.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(services).ConfigureAwait(false);
        await reporter.RemoveAsync().ConfigureAwait(false);
        _status.Stopped();
        Log.WorkerStopped(_logger, WorkerId, released);
    }

    private IEnumerable<PeriodicService> MaintenanceServices(IJobWorkerStore store)
    {
        yield return new LeaseKeeper(store, _running, WorkerId, _options, _time, _logger);
        yield return new LeaseRescuer(store, _options, _signals, _time, _logger);
        yield return new DepthSampler(_queue, _status, _options, _time, _logger);
        if (_options.FinishedJobRetention is { } retention)
            yield return new RetentionPruner(store, retention, _options, _time, _logger);
        if (_services.GetService<IRunHistoryStore>() is { } history)
            yield return new RunHistoryPruner(history, _options, _time, _logger);
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
                    if (_status.StoreRefusal is not null) Log.StoreAccepted(_logger);
                    _status.StoreRefused(null);
                    break;
                }
                catch (JobStoreUnavailableException refused)
                {
                    // Retrying will not fix it by itself: one line at Critical, the cause in the health
                    // check, then quiet retries at the longest backoff until an operator fixes it.
                    if (_status.StoreRefusal != refused.Message) Log.StoreRefused(_logger, refused.Message);
                    _status.StoreRefused(refused.Message);
                    Log.InitializeFailedDetail(_logger, refused.InnerException ?? refused);
                    try { await Task.Delay(TimeSpan.FromSeconds(30), _time, cancellationToken).ConfigureAwait(false); }
                    catch (OperationCanceledException) { return; }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    var delay = Backoff.Delay(attempt, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30));
                    Log.InitializeFailed(_logger, ex.GetBaseException().Message, delay); // one line per retry; the stack at Debug
                    Log.InitializeFailedDetail(_logger, ex);
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

    private async Task<int> DrainAsync(AckWriter acks)
    {
        if (Drained()) return 0;
        Log.ShutdownWaiting(_logger, _options.ShutdownTimeout, _running.Count);
        var deadline = _time.GetUtcNow() + _options.ShutdownTimeout;
        while (!Drained() && _time.GetUtcNow() < deadline)
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time, CancellationToken.None).ConfigureAwait(false);
        if (Drained()) return 0;

        var left = _running.Snapshot();
        Log.ShutdownCancelling(_logger, left.Length);
        foreach (var running in left) running.Stop(StopReason.Shutdown);

        // Handlers that honour cancellation release their own job; give them a moment, then
        // release whatever still runs so another worker can take it at once.
        var grace = _time.GetUtcNow() + TimeSpan.FromSeconds(2);
        while (!Drained() && _time.GetUtcNow() < grace)
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time, CancellationToken.None).ConfigureAwait(false);
        var stuck = _running.Snapshot().Where(r => r.MarkReleased()).Select(r => new PendingAck(new JobAck(r.Job.Lease, JobAckKind.Released), r.Job)).ToArray();
        await acks.WriteNowAsync(stuck).ConfigureAwait(false); // the completer still runs: a failed write is retried, not dropped

        return left.Length;
    }

    // Every job has finished and every finished job's acknowledgement is queued.
    private bool Drained() => _running.IsEmpty && _running.SlotsInUse == 0;
}
