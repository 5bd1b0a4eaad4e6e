using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Scheduling.QueueContract;

/// <summary>The contract of <see cref="IJobQueue.ListJobsAsync"/>: filters, visible states and keyset pages, on both stores.</summary>
public abstract partial class JobQueueContractTests
{
    [Fact]
    public async Task Listing_filters_by_queue_kind_visible_state_and_creation_time_newest_first_and_pages_by_id()
    {
        var queue = await CreateQueueAsync();
        var mails = new List<long>();
        for (var i = 0; i < 5; i++) mails.Add((await queue.EnqueueAsync(new JobRequest("email", new { n = i }) { Queue = "mail" })).JobId);
        Time.Advance(TimeSpan.FromMinutes(1));
        var later = (await queue.EnqueueAsync(new JobRequest("email") { Queue = "mail", RunAt = Start.AddHours(1) })).JobId;
        var report = (await queue.EnqueueAsync(new JobRequest("report") { Queue = "reports" })).JobId;
        var running = Assert.Single(await queue.AcquireAsync(Take(1, "reports")));

        var all = await queue.ListJobsAsync(new JobListQuery());
        Assert.Equal([report, later, .. mails.AsEnumerable().Reverse()], all.Select(j => j.Id));
        Assert.Equal(JobState.Running, all[0].State);
        Assert.Equal(JobState.Scheduled, all[1].State);
        using (var payload = System.Text.Json.JsonDocument.Parse(all[2].PayloadJson!)) Assert.Equal(4, payload.RootElement.GetProperty("n").GetInt32());

        Assert.Equal([later, .. mails.AsEnumerable().Reverse()], (await queue.ListJobsAsync(new JobListQuery { Queue = "mail" })).Select(j => j.Id));
        Assert.Equal([report], (await queue.ListJobsAsync(new JobListQuery { Kind = "report" })).Select(j => j.Id));
        Assert.Equal([later], (await queue.ListJobsAsync(new JobListQuery { States = [JobState.Scheduled] })).Select(j => j.Id));
        Assert.Equal([report, later], (await queue.ListJobsAsync(new JobListQuery { States = [JobState.Running, JobState.Scheduled] })).Select(j => j.Id));
        Assert.Equal(5, (await queue.ListJobsAsync(new JobListQuery { States = [JobState.Available] })).Count);
        Assert.Equal([report, later], (await queue.ListJobsAsync(new JobListQuery { CreatedFrom = Start.AddSeconds(30) })).Select(j => j.Id));
        Assert.Equal(5, (await queue.ListJobsAsync(new JobListQuery { CreatedBefore = Start.AddSeconds(30) })).Count);
        Assert.Empty(await queue.ListJobsAsync(new JobListQuery { Queue = "mail", Kind = "report" }));

        var page1 = await queue.ListJobsAsync(new JobListQuery { Queue = "mail", Limit = 4 });
        var page2 = await queue.ListJobsAsync(new JobListQuery { Queue = "mail", Limit = 4, BeforeId = page1[^1].Id });
        Assert.Equal([later, .. mails.AsEnumerable().Reverse()], page1.Concat(page2).Select(j => j.Id));
        Assert.Equal(2, page2.Count);

        await queue.CompleteAsync(running.Lease);
        Assert.Equal([report], (await queue.ListJobsAsync(new JobListQuery { States = [JobState.Succeeded] })).Select(j => j.Id));
    }

    [Fact]
    public void A_listing_query_out_of_range_is_refused_naming_the_property()
    {
        Assert.Equal("Limit", Assert.Throws<ArgumentOutOfRangeException>(() => new JobListQuery { Limit = 0 }).ParamName);
        Assert.Equal("Limit", Assert.Throws<ArgumentOutOfRangeException>(() => new JobListQuery { Limit = JobListQuery.MaxLimit + 1 }).ParamName);
        Assert.Equal("States", Assert.Throws<ArgumentOutOfRangeException>(() => new JobListQuery { States = [(JobState)42] }).ParamName);
        Assert.Equal("ErrorContains", Assert.Throws<ArgumentException>(() => new JobListQuery { ErrorContains = "" }).ParamName);
        Assert.Equal("ErrorContains", Assert.Throws<ArgumentException>(() => new JobListQuery { ErrorContains = new string('x', JobListQuery.MaxErrorTextLength + 1) }).ParamName);
    }

    [Fact]
    public async Task Listing_finds_a_finished_job_by_its_unique_key_and_jobs_by_the_text_of_an_error()
    {
        var queue = await CreateQueueAsync();
        var done = (await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "order-7", MaxAttempts = 1 })).JobId;
        await queue.CompleteAsync(Assert.Single(await queue.AcquireAsync(Take(1))).Lease);
        var again = (await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "order-7", MaxAttempts = 2 })).JobId; // the key is free once the first finished
        var forever = (await queue.EnqueueAsync(new JobRequest("k") { UniqueKey = "order-8", UniqueScope = UniqueKeyScope.AnyState })).JobId;
        Assert.Equal([again, done], (await queue.ListJobsAsync(new JobListQuery { UniqueKey = "order-7" })).Select(j => j.Id));
        Assert.Equal([forever], (await queue.ListJobsAsync(new JobListQuery { UniqueKey = "order-8" })).Select(j => j.Id));

        await queue.FailAsync(Assert.Single(await queue.AcquireAsync(Take(1))).Lease, "Npgsql: connection REFUSED (50% _done)");
        Assert.Equal([again], (await queue.ListJobsAsync(new JobListQuery { ErrorContains = "refused" })).Select(j => j.Id)); // retried, its error kept
        Assert.Equal([again], (await queue.ListJobsAsync(new JobListQuery { ErrorContains = "50% _d" })).Select(j => j.Id));
        Assert.Empty(await queue.ListJobsAsync(new JobListQuery { ErrorContains = "5_%" })); // text, not a pattern
        Assert.Equal([again, done], (await queue.ListJobsAsync(new JobListQuery { FromId = done, BeforeId = forever })).Select(j => j.Id));
    }

    [Fact]
    public async Task A_job_keeps_the_trace_context_it_was_enqueued_in()
    {
        using var source = new System.Diagnostics.ActivitySource("Scheduling.Contract.Trace");
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = s => s.Name is "Scheduling" or "Scheduling.Contract.Trace",
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        var queue = await CreateQueueAsync();

        long id;
        string traceId;
        using (var request = source.StartActivity("request"))
        {
            traceId = request!.TraceId.ToHexString();
            id = (await queue.EnqueueAsync(new JobRequest("k"))).JobId;
        }

        var job = (await queue.GetJobAsync(id))!;
        Assert.Equal(traceId, job.TraceId);
        Assert.StartsWith($"00-{traceId}-", job.TraceParent, StringComparison.Ordinal);
        var outside = (await queue.GetJobAsync((await queue.EnqueueAsync(new JobRequest("k"))).JobId))!;
        Assert.NotEqual(traceId, outside.TraceId); // its own enqueue span began a trace of its own
    }

    /// <summary>Property: any combination of filters lists exactly the jobs the filters describe, newest first, whichever statement a store picks for it.</summary>
    [Fact]
    public async Task Every_combination_of_filters_lists_exactly_the_matching_jobs()
    {
        var queue = await CreateQueueAsync();
        var ids = new List<long>();
        foreach (var (q, kind, due, key) in new[] { ("mail", "send", true, "k1"), ("mail", "send", false, null), ("sms", "send", true, "k2"), ("mail", "digest", true, null), ("sms", "digest", false, "k3"), ("mail", "send", true, null) })
            ids.Add((await queue.EnqueueAsync(new JobRequest(kind) { Queue = q, RunAt = due ? null : Start.AddHours(1), MaxAttempts = 1, UniqueKey = key })).JobId);
        var leased = await queue.AcquireAsync(new AcquireRequest([new QueueShare("mail", 1), new QueueShare("sms", 1)], "w", 3, Lease));
        await queue.CompleteAsync(leased[0].Lease);
        await queue.FailAsync(leased[1].Lease, "Boom: 100% of _rows"); // dead: one attempt
        await queue.FailAsync(leased[2].Lease, "timeout");
        await queue.CancelAsync(ids[^1]);
        var all = await queue.ListJobsAsync(new JobListQuery());
        Assert.Equal(ids.Count, all.Count);

        var queries =
            from q in Gen.Elements<string?>(null, "mail", "sms", "none")
            from kind in Gen.Elements<string?>(null, "send", "digest")
            from states in Gen.SubListOf(Enum.GetValues<JobState>())
            from before in Gen.Elements<long?>(null, ids[3], ids[1])
            from lowest in Gen.Elements<long?>(null, null, ids[1], ids[4])
            from key in Gen.Elements<string?>(null, null, "k1", "k2", "k3", "none")
            from error in Gen.Elements<string?>(null, null, "boom", "BOOM", "100%", "_rows", "% of", "timeout", "o", "x%")
            from limit in Gen.Elements(1, 2, 100)
            select new JobListQuery { Queue = q, Kind = kind, States = states.ToArray(), BeforeId = before, FromId = lowest, UniqueKey = key, ErrorContains = error, Limit = limit };
        Prop.ForAll(Arb.From(queries), query =>
        {
            var expected = all.Where(j => query.Matches(j.Id, j.Queue, j.Kind, j.State, j.CreatedAt, j.UniqueKey, j.Errors)).OrderByDescending(j => j.Id).Take(query.Limit).Select(j => j.Id).ToArray();
            var listed = Task.Run(async () => await queue.ListJobsAsync(query)).GetAwaiter().GetResult().Select(j => j.Id).ToArray();
            return expected.SequenceEqual(listed);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(150));
    }

    [Fact]
    public async Task Counting_the_due_jobs_ahead_of_one_follows_acquisition_order()
    {
        var queue = await CreateQueueAsync();
        var ids = (await queue.EnqueueManyAsync([
            new JobRequest("k"), new JobRequest("k") { Priority = 5 }, new JobRequest("k"),
            new JobRequest("k") { RunAt = Start.AddHours(1), Priority = 9 }, new JobRequest("k") { Queue = "other", Priority = 9 }, new JobRequest("k")])).Select(r => r.JobId).ToArray();

        Assert.Equal(0L, await queue.CountAheadAsync(ids[1])); // the highest priority due
        Assert.Equal(1L, await queue.CountAheadAsync(ids[0]));
        Assert.Equal(2L, await queue.CountAheadAsync(ids[2])); // the scheduled job and the other queue's do not count
        Assert.Equal(3L, await queue.CountAheadAsync(ids[5]));
        Assert.Equal(2L, await queue.CountAheadAsync(ids[5], cap: 2));
        Assert.Null(await queue.CountAheadAsync(ids[3])); // not due
        Assert.Null(await queue.CountAheadAsync(999_999));
        var leased = Assert.Single(await queue.AcquireAsync(Take(1)));
        Assert.Equal(ids[1], leased.Id);
        Assert.Null(await queue.CountAheadAsync(ids[1])); // running
        Assert.Equal(1L, await queue.CountAheadAsync(ids[2]));
        Assert.Equal("cap", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => queue.CountAheadAsync(ids[2], cap: 0).AsTask())).ParamName);
    }
}
