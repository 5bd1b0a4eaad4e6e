using Cronos;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Scheduling.Stagger;

/// <summary>
/// Turns each recurring job's ticks into jobs on <see cref="IJobQueue"/>. Every host may run it:
/// each tick carries an any-state unique key, so a tick becomes exactly one job however many hosts
/// enqueue it. Ticks come from the job's effective (staggered) expression in its time zone.
/// </summary>
internal sealed partial class RecurringJobScheduler : BackgroundService, IRecurringJobsView
{
    private readonly IJobQueue _queue;
    private readonly IStaggerPolicy _policy;
    private readonly RecurringJobOptions _options;
    private readonly StaggerOptions _stagger;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Scheduling.Internal.RegisteredHandlerKinds? _handlers;
    private readonly bool _runsWorkers;
    private readonly IRecurringJobStore _store;
    private readonly Scheduling.Internal.QueueSignals? _signals;
    private IReadOnlyList<RecurringJobDefinition> _stored = [];
    private readonly ResourceAllocator? _allocator;
    private Dictionary<string, TimeSpan> _estimated = new(StringComparer.Ordinal);
    private int _plansLoaded;
    private long _sleepingUntil = NotSleeping;
    private const long NotSleeping = long.MinValue;

    public RecurringJobScheduler(IJobQueue queue, IStaggerPolicy policy, IOptions<RecurringJobOptions> options, IOptions<StaggerOptions> stagger, TimeProvider time, ILogger<RecurringJobScheduler>? logger = null,
        Scheduling.Internal.RegisteredHandlerKinds? handlers = null, IOptions<SchedulingOptions>? scheduling = null, IRecurringJobStore? store = null, Scheduling.Internal.QueueSignals? signals = null,
        ResourceAllocator? allocator = null)
    {
        _allocator = allocator;
        _store = store ?? NoRecurringJobStore.Instance;
        _signals = signals;
        _handlers = handlers;
        _runsWorkers = scheduling?.Value.RunWorkers ?? false;
        _queue = queue;
        _policy = policy;
        _options = options.Value;
        _stagger = stagger.Value;
        _time = time;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// Until when the loop sleeps, or null while it works: tests advance a fake clock only while every
    /// scheduler sleeps, so no tick depends on how fast real threads run.
    /// </summary>
    internal DateTimeOffset? SleepingUntil => Volatile.Read(ref _sleepingUntil) is var ticks and not NotSleeping ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;

    /// <summary>How many times the plans were built (at start, then once per change of the stored jobs): tests wait for a change to be seen.</summary>
    internal int PlansLoaded => Volatile.Read(ref _plansLoaded);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunAsync(stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _sleepingUntil, DateTimeOffset.MaxValue.UtcTicks); // for good
        }
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var storesJobs = _store is not NoRecurringJobStore;
        if (_options.Jobs.Count == 0 && !storesJobs) return;
        WarnAboutNames();
        List<Plan>? plans = null;
        var changed = _signals?.NextAsync(Scheduling.Internal.QueueSignals.RecurringJobsChanged); // listening before the first read, so no change is missed
        var refreshAt = DateTimeOffset.MinValue;

        while (!stoppingToken.IsCancellationRequested)
        {
            // Plans are built at start, then again when stored jobs changed (notified) or now and then (a notification may be lost).
            var current = _time.GetUtcNow();
            if (plans is null || storesJobs && (changed?.IsCompleted == true || current >= refreshAt))
                (plans, refreshAt) = (await LoadPlansAsync(plans ?? [], stoppingToken).ConfigureAwait(false), current + _options.RefreshInterval);

            // Taken before the pass, so a change made during it wakes the sleep that follows.
            changed = _signals?.NextAsync(Scheduling.Internal.QueueSignals.RecurringJobsChanged);
            var now = _time.GetUtcNow().UtcDateTime;
            var allEnqueued = true;
            foreach (var plan in plans) allEnqueued &= await EnqueueDueAsync(plan, now, stoppingToken).ConfigureAwait(false);

            var next = plans.Select(p => Occurrences.Next(p.Expression, p.FixedSecond, p.Job.TimeZone, p.Cursor)).Where(t => t is not null).Min();
            if (next is null && !storesJobs) return; // no job will ever fire again
            current = _time.GetUtcNow();
            var wake = allEnqueued ? next is { } n ? new DateTimeOffset(n, TimeSpan.Zero) : DateTimeOffset.MaxValue : current + TimeSpan.FromSeconds(1);
            if (storesJobs && refreshAt < wake) wake = refreshAt;
            var delay = wake - current;
            if (delay <= TimeSpan.Zero) continue;

            using var sleeping = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            try
            {
                // The timer first, then the word that the loop sleeps: a clock advanced in between
                // would otherwise push the timer past the wake-up it was advanced to.
                var sleep = Task.Delay(delay, _time, sleeping.Token);
                Volatile.Write(ref _sleepingUntil, wake.UtcTicks);
                var woke = changed is null ? sleep : await Task.WhenAny(sleep, changed).ConfigureAwait(false);
                if (woke == sleep) await sleep.ConfigureAwait(false);
                else await sleeping.CancelAsync().ConfigureAwait(false); // a change: build the plans again now
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            finally
            {
                Volatile.Write(ref _sleepingUntil, NotSleeping);
            }
        }
    }

    /// <summary>
    /// The plans for the code-registered jobs and the stored ones (a stored job takes the place of a
    /// code one of its name; a paused one has none), offsets planned over all of them. A job that
    /// had a plan keeps its cursor, so an edit neither repeats nor loses a tick; a new one starts
    /// from its misfire policy's window. Logs the summary when anything changed.
    /// </summary>
    private async Task<List<Plan>> LoadPlansAsync(List<Plan> previous, CancellationToken cancellationToken)
    {
        IReadOnlyList<RecurringJobDefinition> stored;
        try
        {
            stored = await _store.ListRecurringJobsAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            StoredJobsUnreadable(_logger, ex);
            return previous.Count > 0 ? previous : Build(_options.Jobs, []); // keep going with what is known
        }

        if (PlansLoaded > 0 && stored.SequenceEqual(_stored)) return previous;
        _stored = stored;
        var jobs = _options.Jobs.Where(j => !stored.Any(s => s.Name == j.Name)).ToList();
        foreach (var definition in stored.Where(s => !s.Paused))
        {
            try
            {
                jobs.Add(RecurringJobManager.ToRecurringJob(definition));
            }
            catch (ArgumentException ex)
            {
                StoredJobInvalid(_logger, definition.Name, ex.Message); // written around the manager's validation
            }
        }

        _estimated = await EstimateDurationsAsync(jobs, cancellationToken).ConfigureAwait(false);
        var plans = Build(jobs, previous);
        _published = plans;
        Interlocked.Increment(ref _plansLoaded);
        LogSummary(plans, stored.Count(s => s.Paused));
        return plans;
    }

    /// <summary>The duration the planner uses for the registered job <paramref name="name"/>: given, estimated, or the default (tests).</summary>
    internal TimeSpan? PlannedDuration(string name) => _options.Jobs.Find(j => j.Name == name) is { } job ? ToStaggerJob(job).ExpectedDuration : null;

    /// <summary>The job as the planner sees it, with its estimated duration when it gives none (and <paramref name="cron"/> for its expression when given).</summary>
    private StaggerJob ToStaggerJob(RecurringJob job, string? cron = null) => job.ToStaggerJob(cron, _estimated.TryGetValue(job.Name, out var d) ? d : null);

    /// <summary>
    /// The durations of the jobs that give none, estimated from their template's run history (read
    /// again each time the plans are built); a job without history, or whose history cannot be read, keeps the default.
    /// </summary>
    private async Task<Dictionary<string, TimeSpan>> EstimateDurationsAsync(IReadOnlyList<RecurringJob> jobs, CancellationToken cancellationToken)
    {
        var estimated = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);
        if (_allocator is null) return estimated;
        foreach (var job in jobs)
        {
            if (job.ExpectedDuration is not null || job.Template.Definition is not { } definition) continue;
            try
            {
                if (await _allocator.EstimateDurationAsync(definition, job.Template.Command, cancellationToken).ConfigureAwait(false) is { } duration)
                    estimated[job.Name] = duration;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                DurationUnreadable(_logger, job.Name, ex);
            }
        }

        return estimated;
    }

    private List<Plan> Build(IReadOnlyList<RecurringJob> jobs, List<Plan> previous)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        // The package's own policy plans over the jobs there are now; a policy of the application's own is asked as it is.
        var policy = _policy is StaggerPolicy ? new StaggerPolicy(_stagger, jobs.Select(j => ToStaggerJob(j))) : _policy;
        return jobs.Select(job =>
        {
            var result = policy.Apply(job.Name, job.Cron);
            var schedule = CronSchedule.Parse(result.EffectiveExpression);
            var before = previous.Find(p => p.Job.Name == job.Name);
            var cursor = before?.Cursor ?? (PlansLoaded > 0 || job.Misfire == MisfirePolicy.Skip ? now - _options.MisfireThreshold : now - _options.CatchUpWindow);
            return new Plan(job, result, CronSchedule.Compile(result.EffectiveExpression), schedule.FixedSecond, cursor) { Passed = before?.Passed ?? false };
        }).ToList();
    }

    private async Task<bool> EnqueueDueAsync(Plan plan, DateTime now, CancellationToken cancellationToken)
    {
        var due = Occurrences.Between(plan.Expression, plan.FixedSecond, plan.Job.TimeZone, plan.Cursor, now.AddTicks(1))
            .Where(t => t > plan.Cursor && t <= now).ToList();
        if (due.Count == 0) return true;
        var onTime = due.Where(t => now - t <= _options.MisfireThreshold).ToList();
        var missed = due.Where(t => now - t > _options.MisfireThreshold).ToList();
        var chosen = plan.Job.Misfire switch
        {
            MisfirePolicy.Skip => [],
            MisfirePolicy.CatchUp => missed.TakeLast(Math.Max(0, plan.Job.MaxCatchUp)).ToList(),
            _ => onTime.Count > 0 ? [] : missed.TakeLast(1).ToList(),
        };
        // At start the ticks before it are not known to be missed (earlier hosts ran them): only the
        // ones chosen and found not yet enqueued are reported. While the host runs, every miss is.
        var firstPass = !plan.Passed;
        plan.Passed = true;
        if (!firstPass && missed.Count > chosen.Count) MissedTicks(_logger, plan.Job.Name, missed.Count - chosen.Count, plan.Job.Misfire);
        var missedChosen = chosen.ToHashSet();
        chosen.AddRange(onTime);

        foreach (var tick in chosen)
        {
            var at = new DateTimeOffset(tick, TimeSpan.Zero);
            var request = plan.Job.Template with { RunAt = at, UniqueKey = plan.Job.TickKey(at), UniqueScope = UniqueKeyScope.AnyState, OnUniqueConflict = UniqueKeyConflict.ReturnExisting };
            try
            {
                var result = await _queue.EnqueueAsync(request, cancellationToken).ConfigureAwait(false);
                if (firstPass && result.Created && missedChosen.Contains(tick)) MissedAtStart(_logger, plan.Job.Name, at, plan.Job.Misfire);
            }
            catch (Exception ex) when (ex is not OperationCanceledException && ex is not ArgumentException)
            {
                TickFailed(_logger, ex, plan.Job.Name, at);
                return false; // the cursor stays, so the tick is tried again on the next pass
            }

            plan.Cursor = tick;
        }

        plan.Cursor = due[^1];
        return true;
    }

    /// <summary>
    /// Names that cannot be right: a recurring job whose kind no handler of this worker host takes
    /// (another host may, so a warning), and an offset configured for a job nobody registered (a typo
    /// in a key is otherwise silently ignored).
    /// </summary>
    private void WarnAboutNames()
    {
        if (_runsWorkers && _handlers is not null)
        {
            var kinds = _handlers.Kinds;
            foreach (var job in _options.Jobs.Where(j => !_handlers.Contains(j.Template.Kind)))
                UnhandledKind(_logger, job.Name, job.Template.Kind, kinds.Count == 0 ? "(none)" : string.Join(", ", kinds));
        }

        var names = _options.Jobs.Select(j => j.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var key in _stagger.Offsets.Keys.Where(k => !names.Contains(k)).Order(StringComparer.Ordinal))
            UnknownOffsetKey(_logger, StaggerOptions.Section, key, string.Join(", ", names.Order(StringComparer.Ordinal)));
    }

    private volatile List<Plan>? _published;
    private RecurringJobsPlan? _view;
    private int _viewOf;

    /// <inheritdoc />
    public RecurringJobsPlan? Current
    {
        get
        {
            // Built on demand from the plans in force (their next ticks move on), at most once per pass.
            if (_published is not { } plans) return null;
            var version = PlansLoaded;
            var now = _time.GetUtcNow();
            if (_view is { } view && _viewOf == version && view.Jobs.All(j => j.NextTicks.Count == 0 || j.NextTicks[0] > now)) return view;
            (_view, _viewOf) = (Describe(plans, now), version);
            return _view;
        }
    }

    private RecurringJobsPlan Describe(List<Plan> plans, DateTimeOffset now)
    {
        const int NextTicks = 3, Hour = 3600, Step = 30;
        var jobs = plans.Select(p =>
        {
            var ticks = new List<DateTimeOffset>();
            var after = now.UtcDateTime;
            while (ticks.Count < NextTicks && Occurrences.Next(p.Expression, p.FixedSecond, p.Job.TimeZone, after) is { } next)
            {
                ticks.Add(new DateTimeOffset(next, TimeSpan.Zero));
                after = next;
            }

            return new RecurringJobPlan(p.Job.Name, p.Job.Template.Kind, p.Job.Template.Queue, p.Job.TimeZone.Id, p.Stagger, ToStaggerJob(p.Job).ExpectedDuration, ticks);
        }).OrderBy(j => j.Name, StringComparer.Ordinal).ToArray();

        try
        {
            var unstaggered = CollisionAnalyzer.Load(plans.Select(p => ToStaggerJob(p.Job, p.Stagger.OriginalExpression)).ToArray());
            var staggered = CollisionAnalyzer.Load(plans.Select(p => ToStaggerJob(p.Job, p.Stagger.EffectiveExpression)).ToArray());
            var busiest = Array.IndexOf(unstaggered, unstaggered.Max()) / Hour * Hour;
            int[] Series(int[] load) => Enumerable.Range(0, Hour / Step).Select(i => load.Skip(busiest + i * Step).Take(Step).DefaultIfEmpty(0).Max()).ToArray();
            return new RecurringJobsPlan(jobs, now)
            {
                BusiestHour = new DateTimeOffset(Timeline.Start.AddSeconds(busiest)), Step = TimeSpan.FromSeconds(Step),
                Unstaggered = Series(unstaggered), Staggered = Series(staggered), Peak = (unstaggered.Max(), staggered.Max()),
            };
        }
        catch (ArgumentException)
        {
            return new RecurringJobsPlan(jobs, now); // an expression the simulation cannot read: the jobs without the timeline
        }
    }

    private void LogSummary(List<Plan> plans, int paused)
    {
        if (!_logger.IsEnabled(LogLevel.Information)) return;
        CollisionReport? collisions = null;
        try
        {
            collisions = CollisionAnalyzer.Analyze(plans.Select(p => ToStaggerJob(p.Job, p.Stagger.EffectiveExpression)).ToArray());
        }
        catch (ArgumentException)
        {
            // Names and expressions were validated at start-up; a summary is not worth failing for.
        }

        Summary(_logger, StaggerSummary.Describe(_stagger.Enabled, plans.Select(p => p.Stagger).ToArray(), collisions) + (paused > 0 ? $"\n{paused} stored job(s) paused." : ""));
    }

    private sealed class Plan(RecurringJob job, StaggerResult result, CronExpression expression, int? fixedSecond, DateTime cursor)
    {
        public RecurringJob Job { get; } = job;
        public StaggerResult Stagger { get; } = result;
        public CronExpression Expression { get; } = expression;
        public int? FixedSecond { get; } = fixedSecond;
        public DateTime Cursor { get; set; } = cursor;

        /// <summary>Set after the first pass over the ticks before start.</summary>
        public bool Passed { get; set; }
    }

    [LoggerMessage(3000, LogLevel.Information, "Recurring jobs:\n{Summary}")]
    private static partial void Summary(ILogger logger, string summary);

    [LoggerMessage(3001, LogLevel.Warning, "Recurring job '{Job}': {Count} missed tick(s) not enqueued (misfire policy {Policy})")]
    private static partial void MissedTicks(ILogger logger, string job, int count, MisfirePolicy policy);

    [LoggerMessage(3003, LogLevel.Warning, "Recurring job '{Job}': the tick at {Tick} was missed while no host ran it; enqueued now (misfire policy {Policy})")]
    private static partial void MissedAtStart(ILogger logger, string job, DateTimeOffset tick, MisfirePolicy policy);

    [LoggerMessage(3004, LogLevel.Warning, "Recurring job '{Job}' enqueues kind '{Kind}', which no handler of this host takes (registered: {Kinds}); its jobs fail here unless another host handles them")]
    private static partial void UnhandledKind(ILogger logger, string job, string kind, string kinds);

    [LoggerMessage(3005, LogLevel.Warning, "{Section}:Offsets:{Key} names no recurring job, so it is ignored (recurring jobs: {Jobs})")]
    private static partial void UnknownOffsetKey(ILogger logger, string section, string key, string jobs);

    [LoggerMessage(3006, LogLevel.Warning, "The stored recurring jobs could not be read; going on with the ones known")]
    private static partial void StoredJobsUnreadable(ILogger logger, Exception exception);

    [LoggerMessage(3008, LogLevel.Warning, "Recurring job '{Job}': its run history could not be read; its duration is planned at the default")]
    private static partial void DurationUnreadable(ILogger logger, string job, Exception exception);

    [LoggerMessage(3007, LogLevel.Warning, "Stored recurring job '{Job}' is not valid and has no ticks: {Reason}")]
    private static partial void StoredJobInvalid(ILogger logger, string job, string reason);

    [LoggerMessage(3002, LogLevel.Warning, "Recurring job '{Job}': enqueueing the tick at {Tick} failed; retrying on the next pass")]
    private static partial void TickFailed(ILogger logger, Exception exception, string job, DateTimeOffset tick);
}
