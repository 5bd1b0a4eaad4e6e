using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Scheduling.Postgres;

namespace Scheduling.Cli;

/// <summary><c>migrate</c>, <c>status</c>, <c>queues</c> and <c>jobs ...</c> against one schema.</summary>
internal static class OperatorCommands
{
    public static Command Migrate()
    {
        var dryRun = new Option<bool>("--dry-run") { Description = "print the pending migrations' SQL instead of applying it" };
        return DatabaseCommand.Create("migrate", "Apply (or print) the schema's pending migrations.", anySchema: true, async (db, parse, cancellationToken) =>
        {
            if (parse.GetValue(dryRun))
            {
                var pending = await db.Operations.PendingMigrationsAsync(cancellationToken);
                if (db.Json) await WriteJsonAsync(db, new { schema = db.Schema, pending = pending.Select(p => new { version = p.Version, name = p.Name, sql = p.Sql }) });
                else if (pending.Count == 0) await db.Output.WriteLineAsync($"Schema '{db.Schema}' is up to date.");
                else foreach (var p in pending) await db.Output.WriteLineAsync($"-- migration {p.Version}: {p.Name}\n{p.Sql}");
                return Cli.Ok;
            }

            var applied = await db.Operations.MigrateAsync(cancellationToken);
            if (db.Json) await WriteJsonAsync(db, new { schema = db.Schema, applied });
            else await db.Output.WriteLineAsync(applied.Count == 0 ? $"Schema '{db.Schema}' was already up to date." : $"Applied migration(s) {string.Join(", ", applied)} to schema '{db.Schema}'.");
            return Cli.Ok;
        }, dryRun);
    }

    public static Command Status() => DatabaseCommand.Create("status", "The schema's migration version (exit 5 when migrations are pending).", anySchema: true, async (db, _, cancellationToken) =>
    {
        var applied = await db.Operations.AppliedMigrationsAsync(cancellationToken);
        var version = applied.Count == 0 ? 0 : applied.Max();
        var latest = PostgresMigrator.LatestVersion;
        if (db.Json) await WriteJsonAsync(db, new { schema = db.Schema, version, latest, upToDate = version == latest });
        else await db.Output.WriteLineAsync($"Schema '{db.Schema}': migration {version} of {latest}{(version == latest ? " (up to date)" : version < latest ? $" (run 'scheduling migrate --schema {db.Schema}')" : " (newer than this tool)")}.");
        return version == latest ? Cli.Ok : Cli.NothingChanged;
    });

    public static Command Queues()
    {
        var queues = QueueList();
        queues.Add(OnOneQueue("pause", "Pause a queue for every host: nothing of it starts until it is resumed; enqueueing and running jobs go on (exit 5 when it was paused already).",
            (queue, name, cancellationToken) => queue.PauseQueueAsync(name, cancellationToken), "paused", "was paused already"));
        queues.Add(OnOneQueue("resume", "Resume a paused queue and wake its workers (exit 5 when it was not paused).",
            (queue, name, cancellationToken) => queue.ResumeQueueAsync(name, cancellationToken), "resumed", "was not paused"));
        queues.Add(Limit());
        queues.Add(OnOneQueue("unlimit", "Remove a queue's limits (rates, per-key cap, fair keys) for every host (exit 5 when it had none).",
            async (queue, name, cancellationToken) => (await queue.SetQueueLimitsAsync(name, QueueLimits.None, cancellationToken)).IsLimited, "has no limits now", "had no limits"));
        return queues;
    }

    private static Command Limit()
    {
        var name = new Argument<string>("queue") { Description = "the queue's name" };
        var rate = Cli.RateOption("--rate", "at most this many starts per period for the whole queue");
        var perKey = Cli.RateOption("--rate-per-key", "at most this many starts per period for each partition key");
        var cap = new Option<int?>("--concurrency-per-key") { Description = "at most this many running jobs per partition key (1: a mutex per key)", HelpName = "n" };
        cap.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is { } n && n is < 1 or > QueueLimits.MaxConcurrencyPerKey)
                result.AddError($"--concurrency-per-key must be between 1 and {QueueLimits.MaxConcurrencyPerKey} (was {n}).");
        });
        var fair = new Option<bool>("--fair-keys") { Description = "interleave partition keys in every claim (implied by the per-key limits)" };
        return DatabaseCommand.Create("limit", "Set a queue's limits for every host, replacing the old ones: rates (COUNT/PERIOD: 10/s, 100/1m), a per-key cap, fair keys; enforced by the claim. 'queues unlimit NAME' removes them.", async (db, parse, cancellationToken) =>
        {
            var queue = parse.GetValue(name)!;
            var limits = new QueueLimits { Rate = parse.GetValue(rate), RatePerKey = parse.GetValue(perKey), ConcurrencyPerKey = parse.GetValue(cap), FairKeys = parse.GetValue(fair) };
            if (!limits.IsLimited)
            {
                await db.Error.WriteLineAsync($"{db.Command}: give at least one of --rate, --rate-per-key, --concurrency-per-key, --fair-keys (or 'scheduling queues unlimit {queue}' to remove the limits).");
                return Cli.Usage;
            }

            await db.Queue.SetQueueLimitsAsync(queue, limits, cancellationToken);
            if (db.Json) await WriteJsonAsync(db, new { queue, limits });
            else await db.Output.WriteLineAsync($"queue '{queue}' limited: {Cli.Limits(limits)}");
            return Cli.Ok;
        }, name, rate, perKey, cap, fair);
    }

    private static Command OnOneQueue(string verb, string description, Func<PostgresJobQueue, string, CancellationToken, ValueTask<bool>> change, string done, string unchanged)
    {
        var name = new Argument<string>("queue") { Description = "the queue's name" };
        return DatabaseCommand.Create(verb, description, async (db, parse, cancellationToken) =>
        {
            var queue = parse.GetValue(name)!;
            var changed = await change(db.Queue, queue, cancellationToken);
            if (db.Json) await WriteJsonAsync(db, new { queue, changed });
            else await db.Output.WriteLineAsync(changed ? $"queue '{queue}' {done}" : $"queue '{queue}' {unchanged}");
            return changed ? Cli.Ok : Cli.NothingChanged;
        }, name);
    }

    private static Command QueueList() => DatabaseCommand.Create("queues", "Per queue: waiting, available, scheduled, running and dead jobs, the oldest due job's age, the throughput, whether it is paused and its limits; 'queues pause|resume|limit|unlimit NAME'.", async (db, _, cancellationToken) =>
    {
        var queues = await db.Operations.QueuesAsync(cancellationToken);
        // Live hosts and oversized jobs come from the queue's own statistics (one home for that rule).
        var placement = (await db.Queue.GetQueueStatsAsync(cancellationToken)).ToDictionary(s => s.Queue, StringComparer.Ordinal);
        var rows = queues.Select(q => (Queue: q, Hosts: placement.GetValueOrDefault(q.Queue)?.Hosts ?? 0, Oversized: placement.GetValueOrDefault(q.Queue)?.Oversized ?? 0)).ToArray();
        if (db.Json)
        {
            await WriteJsonAsync(db, rows.Select(r => new
            {
                r.Queue.Queue, r.Queue.Waiting, r.Queue.Available, r.Queue.Scheduled, r.Queue.Running, r.Queue.Dead, r.Queue.OldestDueSeconds,
                r.Queue.FinishedPerMinute, r.Queue.Paused, r.Queue.Limits, r.Hosts, r.Oversized,
            }));
            return Cli.Ok;
        }

        await db.Output.WriteLineAsync($"{"queue",-24} {"waiting",8} {"available",9} {"scheduled",9} {"running",8} {"dead",6} {"oldest due",11} {"done/min",9} {"hosts",5} {"oversized",9}  {"state",-7}  limits");
        foreach (var (q, hosts, oversized) in rows)
        {
            var oldest = q.OldestDueSeconds is { } s ? s.ToString("0.0", CultureInfo.InvariantCulture) + " s" : "-";
            await db.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{q.Queue,-24} {q.Waiting,8} {q.Available,9} {q.Scheduled,9} {q.Running,8} {q.Dead,6} {oldest,11} {q.FinishedPerMinute,9:0.#} {hosts,5} {oversized,9}  {(q.Paused ? "paused" : "running"),-7}  {Cli.Limits(q.Limits)}"));
        }

        foreach (var (q, hosts, oversized) in rows.Where(r => r.Oversized > 0))
            await db.Output.WriteLineAsync($"queue '{q.Queue}': {oversized} job(s) need more than any of its {hosts} live host(s) can hold; they wait until a larger host serves it (see 'scheduling hosts').");
        return Cli.Ok;
    });

    public static Command Hosts() => DatabaseCommand.Create("hosts", "The live worker hosts: the queues each serves, the capacity it declared, when it started and last reported.", async (db, _, cancellationToken) =>
    {
        var hosts = await db.Queue.ListHostsAsync(cancellationToken);
        if (db.Json)
        {
            await WriteJsonAsync(db, hosts);
            return Cli.Ok;
        }

        if (hosts.Count == 0)
        {
            await db.Output.WriteLineAsync("No live worker hosts.");
            return Cli.Ok;
        }

        await db.Output.WriteLineAsync($"{"worker",-40} {"memory",10} {"cpu",8} {"gpus",5} {"started",-20} {"seen",-20}  queues");
        foreach (var h in hosts)
        {
            static string Amount(int? amount, string unit) => amount is { } a ? a.ToString(CultureInfo.InvariantCulture) + unit : "any";
            await db.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{h.WorkerId,-40} {Amount(h.Capacity?.MemoryMb, " MB"),10} {Amount(h.Capacity?.CpuMillicores, "m"),8} {Amount(h.Capacity?.Gpus, ""),5} {h.StartedAt.UtcDateTime,-20:yyyy-MM-dd HH:mm:ss} {h.SeenAt.UtcDateTime,-20:yyyy-MM-dd HH:mm:ss}  {string.Join(", ", h.Queues)}"));
        }

        return Cli.Ok;
    });

    public static Command Jobs() => new("jobs", "List, show, cancel, retry and redrive jobs.")
    {
        List(),
        OnOneJob("show", "A job's state, timing, lease, allocation, links and attempt errors.", ShowAsync),
        OnOneJob("cancel", "Cancel a job (a running job is asked to stop; exit 5 when it had already finished).", async (db, id, cancellationToken) =>
        {
            var outcome = await db.Queue.CancelAsync(id, cancellationToken);
            if (db.Json) await WriteJsonAsync(db, new { id, outcome });
            else await db.Output.WriteLineAsync($"job {id}: {Cli.Name(outcome)}");
            return outcome switch { CancelOutcome.NotFound => Cli.BadInput, CancelOutcome.AlreadyFinished => Cli.NothingChanged, _ => Cli.Ok };
        }),
        OnOneJob("retry", "Make a job waiting for its retry (or a later run-at) due now (exit 5 when it is not waiting).", async (db, id, cancellationToken) =>
        {
            var retried = await db.Operations.RetryNowAsync(id, cancellationToken);
            if (db.Json) await WriteJsonAsync(db, new { id, retried });
            else await db.Output.WriteLineAsync(retried ? $"job {id} is due now" : $"job {id} is not waiting for a retry");
            return retried ? Cli.Ok : Cli.NothingChanged;
        }),
        OnOneJob("redrive", "Make a dead job available again with fresh attempts (exit 5 when it is not dead).", async (db, id, cancellationToken) =>
        {
            var redriven = await db.Queue.RedriveAsync(id, cancellationToken);
            if (db.Json) await WriteJsonAsync(db, new { id, redriven });
            else await db.Output.WriteLineAsync(redriven ? $"job {id} is available again" : $"job {id} is not dead");
            return redriven ? Cli.Ok : Cli.NothingChanged;
        }),
    };

    public static Command Batches() => new("batches", "Show batches and their live counts.")
    {
        OnOneJob("show", "A batch's counts (pending, succeeded, failed, cancelled), callbacks and whether it has settled.", async (db, id, cancellationToken) =>
        {
            var batch = await db.Queue.GetBatchAsync(id, cancellationToken);
            if (batch is null || db.Json) return await MissingOrJsonAsync(db, batch, "batch", id);
            var lines = new List<(string, string?)>
            {
                ("batch", $"{batch.Id}" + (batch.ParentBatchId is { } parent ? $" (in batch {parent})" : "")),
                ("members", string.Create(CultureInfo.InvariantCulture, $"{batch.Total}: {batch.Pending} pending, {batch.Succeeded} succeeded, {batch.Failed} failed, {batch.Cancelled} cancelled")),
                ("state", batch.SettledAt is null ? "open" : batch.IsSucceeded ? "settled, all succeeded" : "settled"),
                ("created", Time(batch.CreatedAt)),
                ("settled", Time(batch.SettledAt)),
                ("on success", batch.OnSuccessJobId is { } s ? $"job {s}" : null),
                ("on complete", batch.OnCompleteJobId is { } c ? $"job {c}" : null),
                ("members of", $"scheduling jobs list --batch {batch.Id}"),
            };
            return await WriteLinesAsync(db, lines);
        }, "batch"),
    };

    private static Command List()
    {
        var queueName = new Option<string?>("--queue") { Description = "only this queue", HelpName = "name" };
        var kind = new Option<string?>("--kind") { Description = "only this handler kind", HelpName = "kind" };
        var state = Cli.EnumOption<JobState>("--state", "only jobs in this state");
        var since = Cli.TimeOption("--since", "only jobs enqueued at or after this time (UTC unless it says otherwise)");
        var until = Cli.TimeOption("--until", "only jobs enqueued before this time");
        var limit = Cli.BoundedInt("--limit", "jobs per page", 50, 1, JobListQuery.MaxLimit);
        var beforeId = new Option<long?>("--before-id") { Description = "the next page: jobs with ids below this one (printed after a full page)", HelpName = "id" };
        var batch = new Option<long?>("--batch") { Description = "only the members and callbacks of this batch", HelpName = "id" };
        var key = new Option<string?>("--key") { Description = "only jobs with this unique key, in any state", HelpName = "key" };
        var error = new Option<string?>("--error") { Description = $"only jobs with an attempt error containing this text, ignoring case (1-{JobListQuery.MaxErrorTextLength} characters)", HelpName = "text" };
        error.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } text && text.Length is < 1 or > JobListQuery.MaxErrorTextLength)
                result.AddError($"--error must be 1 to {JobListQuery.MaxErrorTextLength} characters (was {text.Length}).");
        });
        var fromId = new Option<long?>("--from-id") { Description = "only jobs with ids at or above this one (bounds a search no index serves, e.g. by kind or error)", HelpName = "id" };
        return DatabaseCommand.Create("list", "Jobs matching the filters, newest first, a page at a time.", async (db, parse, cancellationToken) =>
        {
            var pageSize = parse.GetValue(limit);
            var rows = await db.Queue.ListJobsAsync(new JobListQuery
            {
                Queue = parse.GetValue(queueName), Kind = parse.GetValue(kind), States = parse.GetValue(state) is { } s ? [s] : null,
                CreatedFrom = parse.GetValue(since), CreatedBefore = parse.GetValue(until), BeforeId = parse.GetValue(beforeId), Limit = pageSize, BatchId = parse.GetValue(batch),
                UniqueKey = parse.GetValue(key), ErrorContains = parse.GetValue(error), FromId = parse.GetValue(fromId),
            }, cancellationToken);
            long? next = rows.Count == pageSize ? rows[^1].Id : null;
            if (db.Json)
            {
                await WriteJsonAsync(db, new { jobs = rows, next });
                return Cli.Ok;
            }

            await db.Output.WriteLineAsync($"{"id",10} {"queue",-16} {"kind",-20} {"state",-10} {"attempt",7} {"run at (UTC)",-20}");
            foreach (var r in rows) await db.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{r.Id,10} {r.Queue,-16} {r.Kind,-20} {Cli.Name(r.State),-10} {r.Attempt,3}/{r.MaxAttempts,-3} {r.RunAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}"));
            if (next is not null) await db.Output.WriteLineAsync($"more: --before-id {next}");
            return Cli.Ok;
        }, queueName, kind, state, since, until, limit, beforeId, batch, key, error, fromId);
    }

    private static Command OnOneJob(string name, string description, Func<DatabaseInvocation, long, CancellationToken, Task<int>> run, string noun = "job")
    {
        var id = new Argument<long>("id")
        {
            Description = $"the {noun}'s id",
            CustomParser = result =>
            {
                var text = result.Tokens.Single().Value;
                if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0) return value;
                result.AddError($"'{text}' is not a {noun} id (a positive whole number)");
                return 0;
            },
        };
        return DatabaseCommand.Create(name, description, (db, parse, cancellationToken) =>
            run(db, parse.GetValue(id), cancellationToken), id);
    }

    private static async Task<int> ShowAsync(DatabaseInvocation db, long id, CancellationToken cancellationToken)
    {
        var job = await db.Queue.GetJobAsync(id, cancellationToken);
        if (job is null || db.Json) return await MissingOrJsonAsync(db, job, "job", id);

        var lines = new List<(string, string?)>
        {
            ("job", $"{job.Id} ({job.Kind}, queue {job.Queue})"),
            ("state", Cli.Name(job.State) + (job.CancellationRequested ? " (cancellation requested)" : "")),
            ("priority", job.EffectivePriority > job.Priority ? $"{job.Priority} (effective {job.EffectivePriority})" : $"{job.Priority}"),
            ("attempt", $"{job.Attempt} of {job.MaxAttempts}"),
            ("timeout", job.Timeout is { } timeout ? $"{timeout.TotalSeconds:0.###} s per attempt" : null),
            ("snoozed", job.Snoozes > 0 ? $"{job.Snoozes} time(s)" : null),
            ("key", job.PartitionKey),
            ("start by", Time(job.LatestStartAt)),
            ("enqueued", Time(job.CreatedAt)),
            ("run at", Time(job.RunAt)),
            ("attempted", Time(job.AttemptedAt)),
            ("finishes by", job.ExpectedFinishAt is { } expected ? $"{Time(expected)} (expected, from its history)" : null),
            ("finished", Time(job.FinalizedAt)),
            ("lease", job.LockedBy is null ? null : $"{job.LockedBy} until {Time(job.LeaseExpiresAt)}"),
            ("unique key", job.UniqueKey),
            ("batch", job.BatchId is { } batchId ? $"{batchId} (scheduling batches show {batchId})" : null),
            ("description", job.Description),
            ("command", job.Command),
            ("allocation", job.Allocation is { } a ? Allocation(a) : null),
            ("parents", Links(job.Parents) + (job.PendingParents > 0 ? $" ({job.PendingParents} unfinished; on failure: {Cli.Name(job.OnParentFailure)})" : "")),
            ("children", Links(job.Children)),
            ("payload", job.PayloadJson),
            ("progress", job.Progress is { } progress ? Progress(progress) : null),
            ("result", job.ResultJson),
        };
        await WriteLinesAsync(db, lines);
        foreach (var e in job.Errors) await db.Output.WriteLineAsync($"{"error",-12} attempt {e.Attempt} at {Time(e.At)}: {e.Message}");
        return Cli.Ok;
    }

    /// <summary>What 'show' prints when there is nothing to show (exit 3) or when asked for JSON.</summary>
    private static async Task<int> MissingOrJsonAsync<T>(DatabaseInvocation db, T? value, string what, long id) where T : class
    {
        if (value is null)
        {
            await db.Error.WriteLineAsync($"{db.Command}: no {what} {id} in schema '{db.Schema}'.");
            return Cli.BadInput;
        }

        await WriteJsonAsync(db, value);
        return Cli.Ok;
    }

    /// <summary>The labelled lines of 'show' that have a value.</summary>
    private static async Task<int> WriteLinesAsync(DatabaseInvocation db, IEnumerable<(string Label, string? Value)> lines)
    {
        foreach (var (label, value) in lines.Where(l => !string.IsNullOrEmpty(l.Value))) await db.Output.WriteLineAsync($"{label,-12} {value}");
        return Cli.Ok;
    }

    private static string Allocation(ResourceAllocation a) =>
        $"{a.MemoryMb} MB, {a.CpuMillicores} mCPU{(a.Gpus > 0 ? $", {a.Gpus} GPU" : "")} for {a.DefinitionId} (baseline {a.BaselineMemoryMb} MB; {Cli.Name(a.Source)}"
        + (a.SkipReason == AraSkipReason.None ? "" : $", skipped: {Cli.Name(a.SkipReason)}")
        + (a.SampleCount > 0 ? $", {a.SampleCount} runs" : "") + (a.CeilingHit ? ", at the ceiling" : a.Clamped ? ", clamped" : "")
        + (a.ExpectedDuration is { } usual ? $"; usually done within {usual.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s" : "") + ")";

    private static string Progress(JobProgress p) =>
        string.Join(", ", new[] { p.Fraction is { } f ? (f * 100).ToString("0.#", CultureInfo.InvariantCulture) + "%" : null, p.Message, p.MetadataJson, p.ReportedAt is { } at ? $"at {Time(at)}" : null }.OfType<string>());

    private static string Links(IReadOnlyList<JobLink> links) => string.Join(", ", links.Select(l => $"{l.JobId} ({Cli.Name(l.State)})"));

    private static string? Time(DateTimeOffset? time) => time?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

    private static Task WriteJsonAsync<T>(DatabaseInvocation db, T value) => db.Output.WriteLineAsync(JsonSerializer.Serialize(value, Cli.Json));
}
