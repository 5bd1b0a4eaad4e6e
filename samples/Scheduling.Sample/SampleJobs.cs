namespace Scheduling.Sample;

/// <summary>The sample's queues, retry policy and handlers, shared by the program and its tests.</summary>
public static class SampleJobs
{
    /// <summary>Two queues, quick retries, and the three kinds.</summary>
    public static void Register(SchedulingBuilder scheduling)
    {
        scheduling.Configure(o =>
        {
            o.AddQueue("images", concurrency: 16);
            o.AddQueue("email", concurrency: 8);
            o.Queue.Retry = new RetryBackoffOptions { BaseDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromSeconds(1) };
        });
        scheduling.AddHandler<ResizeImage, ImageJob>("resize-image");
        scheduling.AddHandler<SendEmail, EmailJob>("send-email");
        scheduling.AddHandler<ReportStep, string>("report-step");
        scheduling.AddHandler<CampaignReport, string>("campaign-report");
    }

    /// <summary>
    /// An email campaign as one batch: its on-complete callback runs once every mail is sent or dead,
    /// and reads the batch's counts.
    /// </summary>
    public static BatchRequest EmailCampaign(int emails) =>
        new(Enumerable.Range(0, emails).Select(i => new JobRequest("send-email", new EmailJob($"user{i}@example.com")) { Queue = "email", MaxAttempts = 3 }).ToArray())
        {
            OnComplete = new JobRequest("campaign-report", "spring campaign") { Queue = "email" },
        };

    /// <summary>A small graph in one atomic call: extract, then two transforms in parallel, then publish.</summary>
    public static JobRequest[] ReportPipeline()
    {
        static JobRequest Step(string name, params string[] after) => new("report-step", name)
        {
            Queue = "images", LocalKey = name, DependsOn = after.Select(JobDependency.OnRequest).ToArray(),
        };
        return [Step("publish", "transform-a", "transform-b"), Step("transform-a", "extract"), Step("transform-b", "extract"), Step("extract")];
    }
}

public sealed record ImageJob(string Path, int Width);

public sealed record EmailJob(string To);

public sealed class SampleStats
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _steps = new();
    private int _succeeded, _retried, _dead;
    public IEnumerable<string> Steps => _steps;
    public int PublishedRows { get; private set; }
    /// <summary>What the campaign's on-complete callback read from its batch: (sent, dead), or null before it ran.</summary>
    public (int Sent, int Dead)? Campaign { get; set; }
    public void Step(string name, int rows)
    {
        _steps.Enqueue(name);
        if (name == "publish") PublishedRows = rows;
    }
    public int Succeeded => Volatile.Read(ref _succeeded);
    public int Retried => Volatile.Read(ref _retried);
    public int Dead => Volatile.Read(ref _dead);
    public int Finished => Succeeded + Dead;
    public void Success() => Interlocked.Increment(ref _succeeded);

    public Exception Failure(AcquiredJob job, string message)
    {
        if (job.Attempt < job.MaxAttempts) Interlocked.Increment(ref _retried);
        else Interlocked.Increment(ref _dead);
        return new InvalidOperationException(message);
    }
}

public sealed class ResizeImage(SampleStats stats) : IJobHandler<ImageJob>
{
    public async Task HandleAsync(JobContext<ImageJob> context, CancellationToken cancellationToken)
    {
        await Task.Delay(1, cancellationToken); // stands in for the work
        stats.Success();
    }
}

public sealed class SendEmail(SampleStats stats) : IJobHandler<EmailJob>
{
    public Task HandleAsync(JobContext<EmailJob> context, CancellationToken cancellationToken)
    {
        // About one mail in five meets a flaky server: most recover on retry, a few never do.
        var hash = context.Payload.To.Aggregate(17, (h, c) => unchecked(h * 31 + c)) & 0x7fffffff; // stable across runs
        var failsUntil = hash % 5 == 0 ? 1 + hash / 5 % 4 : 0;
        if (context.Job.Attempt <= failsUntil) throw stats.Failure(context.Job, $"SMTP server refused {context.Payload.To} (attempt {context.Job.Attempt})");
        stats.Success();
        return Task.CompletedTask;
    }
}

/// <summary>The campaign batch's on-complete callback: it runs once, after every mail finished, and reads the batch's live counts.</summary>
public sealed class CampaignReport(SampleStats stats, IJobQueue queue) : IJobHandler<string>
{
    public async Task HandleAsync(JobContext<string> context, CancellationToken cancellationToken)
    {
        var batch = await queue.GetBatchAsync(context.Job.BatchId!.Value, cancellationToken);
        stats.Campaign = (batch!.Succeeded, batch.Failed);
        context.SetResult(new { context.Payload, sent = batch.Succeeded, dead = batch.Failed });
        stats.Success();
    }
}

/// <summary>A step's result: how many rows it produced. Each step reads its parents' results (a graph passing data along).</summary>
public sealed record StepRows(int Rows);

public sealed class ReportStep(SampleStats stats) : IJobHandler<string>
{
    public async Task HandleAsync(JobContext<string> context, CancellationToken cancellationToken)
    {
        context.ReportProgress(0, $"{context.Payload}: reading its inputs"); // shown by 'scheduling jobs show ID' while it runs
        var input = 0;
        foreach (var parent in await context.ParentResultsAsync(cancellationToken)) input += parent.Value<StepRows>()?.Rows ?? 0;
        var rows = context.Payload == "extract" ? 100 : input;
        context.ReportProgress(1, $"{context.Payload}: {rows} rows");
        context.SetResult(new StepRows(rows));
        stats.Step(context.Payload, rows);
        stats.Success();
    }
}
