using Xunit;
using Xunit.Abstractions;

namespace Scheduling.Stagger.Tests;

public sealed class PlannerFiguresTests(ITestOutputHelper output)
{
    [Fact]
    public void On_the_twenty_job_set_the_plan_peaks_at_most_five_and_beats_hashing_and_the_incident_offsets()
    {
        var plan = StaggerPlanner.Plan(JobSets.Twenty);
        var incidentOnly = StaggerPlanner.Plan(JobSets.Twenty, fixedOffsets: JobSets.IncidentOffsets.ToDictionary(k => k.Key, v => v.Value));
        var incidentPeak = CollisionAnalyzer.Analyze(JobSets.Twenty.Select(j => j with { Cron = JobSets.IncidentOffsets.TryGetValue(j.Name, out var o) ? $"{o} {j.Cron}" : j.Cron }).ToArray()).PeakConcurrency;
        output.WriteLine($"unstaggered {plan.UnstaggeredPeakConcurrency}, incident offsets {incidentPeak}, hashed {plan.HashedPeakConcurrency}, planned {plan.PeakConcurrency} ({plan.Strategy}), lower bound {plan.LowerBound}; with the incident's offsets fixed {incidentOnly.PeakConcurrency}");

        Assert.True(plan.PeakConcurrency <= 5, $"planned peak {plan.PeakConcurrency}");
        Assert.True(plan.PeakConcurrency <= plan.HashedPeakConcurrency);
        Assert.True(plan.PeakConcurrency < incidentPeak);
        Assert.True(plan.LowerBound <= plan.PeakConcurrency);
        Assert.Equal(19, plan.UnstaggeredPeakConcurrency);
        Assert.Equal(plan.UnstaggeredPeakConcurrency, CollisionAnalyzer.Analyze(JobSets.Twenty).PeakConcurrency);
        Assert.Equal(12, incidentPeak);
    }
}
