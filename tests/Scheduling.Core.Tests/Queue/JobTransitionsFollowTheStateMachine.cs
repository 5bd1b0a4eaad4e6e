using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Scheduling.Core.Tests.Queue;

/// <summary>
/// Invariant: every transition <see cref="JobTransitions"/> decides is one the state machine in
/// docs/architecture.md allows, with the attempt, due time, finish time and error that go with it.
/// No store is involved: these are the rules both stores write.
/// </summary>
public sealed class JobTransitionsFollowTheStateMachine
{
    private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly Gen<DateTimeOffset> Times = Gen.Choose(0, 1_000_000).Select(s => Epoch.AddSeconds(s));

    private static readonly Gen<JobFacts> RunningJobs =
        from max in Gen.Choose(1, 30)
        from attempt in Gen.Choose(1, 30)
        from cancel in ArbMap.Default.GeneratorFor<bool>()
        from worker in Gen.Elements<string?>("w-1", "host:42:abc", null)
        select new JobFacts(JobState.Running, Math.Min(attempt, max), max, cancel, worker);

    private static readonly Gen<string?> Errors = Gen.Elements<string?>(null, "", "boom", "Système en panne 💥");

    private static readonly Config Many = Config.QuickThrowOnFailure.WithMaxTest(3_000);

    [Fact]
    public void An_acknowledgement_leaves_running_as_its_kind_and_the_facts_say()
    {
        var inputs =
            from job in RunningJobs
            from kind in Gen.Elements(JobAckKind.Succeeded, JobAckKind.Failed, JobAckKind.Cancelled, JobAckKind.Released)
            from error in Errors
            from retryable in ArbMap.Default.GeneratorFor<bool>()
            from now in Times
            from delayMs in Gen.Choose(0, 3_600_000)
            select (job, kind, error, retryable, now, delay: TimeSpan.FromMilliseconds(delayMs));

        Prop.ForAll(Arb.From(inputs), x =>
        {
            var t = JobTransitions.Acknowledge(x.job, x.kind, x.error, x.retryable, x.now, x.delay);
            var expected = x.kind switch
            {
                JobAckKind.Succeeded => JobState.Succeeded,
                _ when x.job.CancelRequested => JobState.Cancelled, // a requested cancellation wins over anything but success
                JobAckKind.Cancelled => JobState.Cancelled,
                JobAckKind.Released => JobState.Available,
                _ => !x.retryable || x.job.Attempt >= x.job.MaxAttempts ? JobState.Dead : JobState.Available,
            };
            Assert.Equal(expected, t.State);
            Assert.Equal(t.IsTerminal, t.FinalizedAt is not null);
            if (t.IsTerminal) Assert.Equal(x.now, t.FinalizedAt);
            Assert.False(t.ResetsAttempts);

            // The attempt is given back only by a release that puts the job back; nothing else changes it.
            Assert.Equal(x.kind == JobAckKind.Released && t.State == JobState.Available ? -1 : 0, t.AttemptChange);
            Assert.True(x.job.Attempt + t.AttemptChange >= 0);

            // A retry is due after its backoff; every other transition keeps the job's own due time.
            Assert.Equal(x.kind == JobAckKind.Failed && t.State == JobState.Available ? x.now + x.delay : null, t.RunAt);

            // Every failure is kept, with the attempt that failed, whatever becomes of the job.
            if (x.kind == JobAckKind.Failed)
            {
                var entry = Assert.IsType<JobAttemptError>(t.Error);
                Assert.Equal((x.job.Attempt, x.now, string.IsNullOrEmpty(x.error) ? JobTransitions.NoErrorMessage : x.error), (entry.Attempt, entry.At, entry.Message));
            }
            else
            {
                Assert.Null(t.Error);
            }
        }).Check(Many);
    }

    [Fact]
    public void What_an_acknowledgement_keeps_does_not_depend_on_the_cancellation_flag()
    {
        // The PostgreSQL store sends both decisions and lets the row's flag pick one: only the state,
        // the times and the attempt may differ between them, never the error kept.
        var inputs =
            from job in RunningJobs
            from kind in Gen.Elements(JobAckKind.Succeeded, JobAckKind.Failed, JobAckKind.Cancelled, JobAckKind.Released)
            from error in Errors
            from retryable in ArbMap.Default.GeneratorFor<bool>()
            from now in Times
            select (job, kind, error, retryable, now);

        Prop.ForAll(Arb.From(inputs), x =>
        {
            var plain = JobTransitions.Acknowledge(x.job with { CancelRequested = false }, x.kind, x.error, x.retryable, x.now, TimeSpan.FromSeconds(3));
            var cancelled = JobTransitions.Acknowledge(x.job with { CancelRequested = true }, x.kind, x.error, x.retryable, x.now, TimeSpan.FromSeconds(3));
            Assert.Equal(plain.Error, cancelled.Error);
            Assert.True(cancelled.State is JobState.Cancelled or JobState.Succeeded);
            // A kind the flag cannot change is decided once (the store sends one row for it).
            if (!JobTransitions.DependsOnCancelRequest(x.kind)) Assert.Equal(plain, cancelled);
        }).Check(Many);
    }

    [Fact]
    public void A_rescue_of_a_job_never_reported_started_gives_its_attempt_back_a_bounded_number_of_times()
    {
        var inputs =
            from job in RunningJobs
            from rescues in Gen.Choose(0, 4)
            from now in Times
            select (job: job with { Started = false, UnstartedRescues = rescues }, now);

        Prop.ForAll(Arb.From(inputs), x =>
        {
            var t = JobTransitions.Rescue(x.job, x.now);
            if (x.job.CancelRequested || x.job.UnstartedRescues >= JobTransitions.MaxUnstartedRescues)
            {
                Assert.Equal(JobTransitions.Rescue(x.job with { Started = true }, x.now), t); // charged as any rescue
                return;
            }

            Assert.Equal(new JobTransition(JobState.Available, x.now, null, -1, null) { CountsUnstartedRescue = true }, t);
            Assert.True(x.job.Attempt + t.AttemptChange >= 0);
        }).Check(Many);
    }

    [Fact]
    public void A_rescue_counts_the_attempt_and_retries_at_once_until_the_last()
    {
        var inputs = from job in RunningJobs from now in Times select (job, now);

        Prop.ForAll(Arb.From(inputs), x =>
        {
            var t = JobTransitions.Rescue(x.job, x.now);
            Assert.False(t.CountsUnstartedRescue);
            var expected = x.job.CancelRequested ? JobState.Cancelled : x.job.Attempt >= x.job.MaxAttempts ? JobState.Dead : JobState.Available;
            Assert.Equal(expected, t.State);
            Assert.Equal(0, t.AttemptChange);
            Assert.Equal(t.State == JobState.Available ? x.now : null, t.RunAt);
            Assert.Equal(t.IsTerminal ? x.now : null, t.FinalizedAt);
            Assert.Equal(new JobAttemptError(x.job.Attempt, x.now, JobTransitions.LeaseExpiredMessage(x.job.LockedBy)), t.Error);
            Assert.Contains($"'{x.job.LockedBy}'", t.Error!.Message, StringComparison.Ordinal);
            Assert.Equal(t.State == JobState.Available, t.IsDueAt(x.now));
        }).Check(Many);
    }

    [Fact]
    public void Cancel_stops_what_has_not_started_asks_what_runs_and_leaves_what_finished()
    {
        var inputs =
            from state in Gen.Elements(JobState.Waiting, JobState.Available, JobState.Running, JobState.Succeeded, JobState.Cancelled, JobState.Dead)
            from attempt in Gen.Choose(0, 5)
            from now in Times
            select (facts: new JobFacts(state, attempt, 5, false), now);

        Prop.ForAll(Arb.From(inputs), x =>
        {
            var (outcome, transition) = JobTransitions.Cancel(x.facts, x.now);
            switch (x.facts.State)
            {
                case JobState.Running:
                    Assert.Equal((CancelOutcome.CancellationRequested, (JobTransition?)null), (outcome, transition));
                    break;
                case JobState.Succeeded or JobState.Cancelled or JobState.Dead:
                    Assert.Equal((CancelOutcome.AlreadyFinished, (JobTransition?)null), (outcome, transition));
                    break;
                default:
                    Assert.Equal(CancelOutcome.Cancelled, outcome);
                    Assert.Equal(new JobTransition(JobState.Cancelled, null, x.now, 0, null), transition);
                    break;
            }
        }).Check(Many);
    }

    [Fact]
    public void Only_a_dead_job_is_redriven_and_it_starts_again_from_its_first_attempt_now()
    {
        var inputs =
            from state in Gen.Elements(JobState.Waiting, JobState.Available, JobState.Running, JobState.Succeeded, JobState.Cancelled, JobState.Dead)
            from attempt in Gen.Choose(0, 9)
            from now in Times
            select (facts: new JobFacts(state, attempt, 9, false), now);

        Prop.ForAll(Arb.From(inputs), x =>
        {
            var t = JobTransitions.Redrive(x.facts, x.now);
            if (x.facts.State != JobState.Dead) Assert.Null(t);
            else Assert.Equal(new JobTransition(JobState.Available, x.now, null, 0, null) { ResetsAttempts = true }, t);
        }).Check(Many);
    }

    [Fact]
    public void A_job_retried_by_its_rules_ends_within_its_attempts_with_one_error_per_failed_attempt()
    {
        // A whole life driven only by the rules: each attempt ends as the generated outcome says.
        var lives =
            from max in Gen.Choose(1, 12)
            from outcomes in Gen.Elements("fail", "rescue", "release", "permanent", "succeed").ListOf()
            select (max, outcomes: outcomes.Take(40).ToArray());

        Prop.ForAll(Arb.From(lives), life =>
        {
            var job = new JobFacts(JobState.Available, 0, life.max, false);
            var errors = 0;
            var now = Epoch;
            foreach (var outcome in life.outcomes)
            {
                if (job.State.IsTerminal()) break;
                job = job with { State = JobState.Running, Attempt = job.Attempt + 1 }; // acquisition counts the attempt
                Assert.InRange(job.Attempt, 1, life.max);
                var t = outcome switch
                {
                    "fail" => JobTransitions.Fail(job, "x", retryable: true, now, TimeSpan.FromSeconds(1)),
                    "permanent" => JobTransitions.Fail(job, "x", retryable: false, now, TimeSpan.FromSeconds(1)),
                    "rescue" => JobTransitions.Rescue(job, now),
                    "release" => JobTransitions.Release(job, now),
                    _ => JobTransitions.Acknowledge(job, JobAckKind.Succeeded, null, true, now, TimeSpan.Zero),
                };
                if (t.Error is not null) errors++;
                job = job with { State = t.State, Attempt = job.Attempt + t.AttemptChange };
                now = now.AddMinutes(1);
            }

            // Dead only on the last allowed attempt, after one kept error per attempt, or by a permanent error.
            if (job.State == JobState.Dead) Assert.True(errors == life.max || life.outcomes.Contains("permanent"), $"dead after {errors} errors of {life.max}");
            if (!job.State.IsTerminal()) Assert.True(errors < life.max);
            Assert.InRange(job.Attempt, 0, life.max);
        }).Check(Many);
    }

    [Fact]
    public void Scheduled_is_exactly_an_available_job_that_is_not_due()
    {
        var inputs =
            from state in Gen.Elements(JobState.Waiting, JobState.Available, JobState.Running, JobState.Succeeded, JobState.Cancelled, JobState.Dead)
            from runAt in Times
            from now in Times
            select (state, runAt, now);

        Prop.ForAll(Arb.From(inputs), x =>
        {
            var visible = JobTransitions.Visible(x.state, x.runAt, x.now);
            Assert.Equal(x.state == JobState.Available && x.runAt > x.now ? JobState.Scheduled : x.state, visible);
        }).Check(Many);
    }

    [Fact]
    public void The_stored_error_history_reads_back_as_written()
    {
        var entries =
            from attempt in Gen.Choose(0, 10_000)
            from micros in Gen.Choose(0, int.MaxValue)
            from message in Gen.Elements("", "boom", "quote \" and \\ backslash", "line\nbreak", "Système en panne 💥", "<tag>&amp;")
            select new JobAttemptError(attempt, Epoch.AddTicks(micros * 10L), message);

        Prop.ForAll(Arb.From(entries.ListOf()), list =>
        {
            var json = JobTransitions.ErrorsToJson(list);
            Assert.Equal(list, JobTransitions.ErrorsFromJson(json));
            Assert.Equal(list.Select(JobTransitions.ErrorToJson), System.Text.Json.JsonDocument.Parse(json).RootElement.EnumerateArray().Select(e => e.GetRawText()));
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(500));
    }
}
