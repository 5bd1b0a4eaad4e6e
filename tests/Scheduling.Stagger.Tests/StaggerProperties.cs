using Cronos;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Options;
using Xunit;

namespace Scheduling.Stagger.Tests;

/// <summary>FsCheck properties of the stagger: shifting, hashing, planning and validation.</summary>
public sealed class StaggerProperties
{
    private static readonly Config Runs = Config.QuickThrowOnFailure.WithMaxTest(100);

    internal static Gen<string> FiveFieldCron()
    {
        var minute = Gen.OneOf(Gen.Constant("*"), Gen.Choose(2, 30).Select(k => $"*/{k}"), Gen.Choose(0, 59).Select(m => $"{m}"),
            Gen.Choose(0, 29).Select(m => $"{m}-{m + 20}"), Gen.Choose(0, 29).Select(m => $"{m},{m + 30}"));
        var hour = Gen.OneOf(Gen.Constant("*"), Gen.Constant("*"), Gen.Choose(2, 12).Select(k => $"*/{k}"), Gen.Choose(0, 23).Select(h => $"{h}"));
        var weekday = Gen.Elements("*", "*", "*", "1-5", "0,6");
        return from m in minute from h in hour from d in weekday select $"{m} {h} * * {d}";
    }

    [Fact]
    public void The_effective_expression_fires_in_the_same_minutes_shifted_by_the_offset()
    {
        var input = from cron in FiveFieldCron() from offset in Gen.Choose(0, 59) select (cron, offset);
        Prop.ForAll(Arb.From(input), t =>
        {
            var policy = new StaggerPolicy(new StaggerOptions { Enabled = true }.SetOffset("job", t.offset));
            var effective = policy.Apply("job", t.cron).EffectiveExpression;
            var from = new DateTime(2026, 1, 5, 0, 0, 0, DateTimeKind.Utc);
            var original = CronExpression.Parse(t.cron).GetOccurrences(from, from.AddDays(7), TimeZoneInfo.Utc).ToArray();
            var shifted = CronExpression.Parse(effective, CronFormat.IncludeSeconds).GetOccurrences(from, from.AddDays(7), TimeZoneInfo.Utc).ToArray();
            return original.Length > 0 && original.Select(o => o.AddSeconds(t.offset)).SequenceEqual(shifted);
        }).Check(Runs);
    }

    [Fact]
    public void Hashed_offsets_are_stable_in_range_and_follow_the_specified_rule()
    {
        Prop.ForAll(Arb.From(ArbMap.Default.GeneratorFor<NonNull<string>>()), name =>
        {
            var offset = StaggerHash.Offset(name.Get);
            return offset is >= 0 and <= 59 && offset == StaggerHash.Offset(name.Get) && offset == StaggerPolicyTests.HashOf(name.Get);
        }).Check(Runs.WithMaxTest(300));
    }

    [Fact]
    public void The_plan_is_never_worse_than_hashing_nor_than_no_stagger_and_never_below_its_lower_bound()
    {
        var job = from cron in FiveFieldCron() from seconds in Gen.Choose(1, 60) select (cron, seconds);
        var set = Gen.Choose(2, 20).SelectMany(n => Gen.ArrayOf(job, n));
        Prop.ForAll(Arb.From(set), jobs =>
        {
            var plan = StaggerPlanner.Plan(jobs.Select((j, i) => new StaggerJob($"job-{i}", j.cron, TimeSpan.FromSeconds(j.seconds))).ToArray());
            var effective = plan.Assignments.Select((a, i) => new StaggerJob(a.Name, a.EffectiveCron, TimeSpan.FromSeconds(jobs[i].seconds))).ToArray();
            return plan.PeakConcurrency <= plan.HashedPeakConcurrency
                && plan.PeakConcurrency <= plan.UnstaggeredPeakConcurrency
                && plan.LowerBound <= plan.PeakConcurrency
                && CollisionAnalyzer.Analyze(effective).PeakConcurrency == plan.PeakConcurrency;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(40));
    }

    [Fact]
    public void Runs_grouped_together_see_identical_load_whatever_the_offsets()
    {
        var job = from cron in FiveFieldCron() from seconds in Gen.Choose(1, 150) from offset in Gen.Choose(0, 59) select (cron, seconds, offset);
        var set = Gen.Choose(1, 8).SelectMany(n => Gen.ArrayOf(job, n));
        Prop.ForAll(Arb.From(set), jobs =>
        {
            var prepared = StaggerPlanner.Prepare(jobs.Select((j, i) => new StaggerJob($"j{i}", j.cron, TimeSpan.FromSeconds(j.seconds))).ToArray());
            var load = new int[Timeline.Seconds];
            for (var i = 0; i < prepared.Count; i++)
                foreach (var start in prepared[i].Starts) Timeline.Add(load, start + jobs[i].offset, prepared[i].Duration, 1);
            var classes = new MinuteClasses(prepared);
            return prepared.All(p =>
            {
                var span = 59 + p.Duration;
                int[] Segment(int start) => Enumerable.Range(0, span).Select(k => load[(start + k) % Timeline.Seconds]).ToArray();
                var ids = classes.GroupIds(p);
                var first = new Dictionary<int, int[]>();
                for (var k = 0; k < ids.Length; k++)
                {
                    if (!first.TryGetValue(ids[k], out var seen)) first[ids[k]] = Segment(p.Starts[k]);
                    else if (!seen.AsSpan().SequenceEqual(Segment(p.Starts[k]))) return false; // same group, different load
                }

                return classes.Group(p).Sum(g => g.Count) == p.Starts.Length;
            });
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(30));
    }

    [Fact]
    public void Adding_one_job_to_a_plan_moves_none_of_the_others()
    {
        var before = StaggerPlanner.Plan(JobSets.Twenty[..19]);
        var previous = before.Assignments.ToDictionary(a => a.Name, a => a.OffsetSeconds);

        var after = StaggerPlanner.Plan(JobSets.Twenty, previous: previous);

        Assert.All(after.Assignments.Take(19), a => Assert.Equal(previous[a.Name], a.OffsetSeconds));
        Assert.Equal(StaggerSource.Planned, after.Assignments[^1].Source);
        Assert.True(after.PeakConcurrency <= after.HashedPeakConcurrency);
    }

    [Fact]
    public void Planning_is_deterministic()
    {
        Assert.Equal(
            StaggerPlanner.Plan(JobSets.Twenty).Assignments.Select(a => a.OffsetSeconds),
            StaggerPlanner.Plan(JobSets.Twenty).Assignments.Select(a => a.OffsetSeconds));
    }

    [Fact]
    public void Validation_rejects_every_offset_outside_0_to_59_and_every_non_integer_and_accepts_the_rest()
    {
        var bad = Gen.OneOf(
            Gen.Choose(60, 1_000_000_000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            Gen.Choose(-1_000_000_000, -1).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ArbMap.Default.GeneratorFor<string>().Where(s => !int.TryParse(s?.Trim(), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out _))); // surrounding blanks are trimmed, as configuration values often carry them
        Prop.ForAll(Arb.From(bad), text => !Validate(text).Succeeded).Check(Runs.WithMaxTest(300));
        Prop.ForAll(Arb.From(Gen.Choose(0, 59)), offset => Validate(offset.ToString(System.Globalization.CultureInfo.InvariantCulture)).Succeeded).Check(Runs);
    }

    [Fact]
    public void Validation_rejects_every_expression_cronos_rejects()
    {
        var broken = from cron in FiveFieldCron() from garbage in Gen.Elements("61", "x", "*/0", "24", "32", "1-", "?") from field in Gen.Choose(0, 4) select Break(cron, field, garbage);
        Prop.ForAll(Arb.From(broken), cron =>
        {
            var cronosRejects = !CronExpression.TryParse(cron, out _);
            var ours = CronSchedule.TryParse(cron, out _);
            return !cronosRejects || ours is null;
        }).Check(Runs.WithMaxTest(300));
    }

    private static string Break(string cron, int field, string garbage)
    {
        var fields = cron.Split(' ');
        fields[field] = garbage;
        return string.Join(' ', fields);
    }

    private static ValidateOptionsResult Validate(string offset)
    {
        var options = new StaggerOptions { Enabled = true };
        options.Offsets["job"] = offset;
        return new StaggerOptionsValidator(Options.Create(new RecurringJobOptions())).Validate(null, options);
    }
}
