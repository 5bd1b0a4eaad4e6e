using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Scheduling.Hosting;
using Xunit;

namespace Scheduling.Core.Tests.Hosting;

/// <summary>What a host declares as its capacity: from options, from configuration, or read from its container's cgroup files.</summary>
public sealed class HostCapacityTests : IDisposable
{
    private readonly string _cgroup = Directory.CreateTempSubdirectory("cgroup-").FullName;

    public void Dispose() => Directory.Delete(_cgroup, recursive: true);

    private void Write(string file, string text) => File.WriteAllText(Path.Combine(_cgroup, file), text + "\n");

    [Fact]
    public void Without_container_limits_asked_for_the_options_capacity_is_declared_as_given()
    {
        Write("memory.max", "1073741824");
        var given = new ResourceCapacity { Gpus = 1 };

        Assert.Same(given, HostCapacity.Declared(new SchedulingOptions { Capacity = given }, _cgroup));
        Assert.Null(HostCapacity.Declared(new SchedulingOptions(), _cgroup)); // nothing declared: today's behaviour
    }

    [Fact]
    public void Container_limits_fill_the_amounts_the_options_leave_unset()
    {
        Write("memory.max", "2147483648"); // 2 GiB
        Write("cpu.max", "150000 100000"); // 1.5 CPUs

        var declared = HostCapacity.Declared(new SchedulingOptions { CapacityFromContainer = true, Capacity = new ResourceCapacity { MemoryMb = 1_000, Gpus = 2 } }, _cgroup);

        Assert.Equal(new ResourceCapacity { MemoryMb = 1_000, CpuMillicores = 1_500, Gpus = 2 }, declared);
        Assert.Equal(new ResourceCapacity { MemoryMb = 2_048, CpuMillicores = 1_500 }, HostCapacity.Declared(new SchedulingOptions { CapacityFromContainer = true }, _cgroup));
    }

    [Fact]
    public void An_unlimited_or_missing_container_limit_leaves_the_amount_unlimited_and_a_garbled_one_is_an_error_naming_the_file()
    {
        Write("memory.max", "max");
        Write("cpu.max", "max 100000");
        Assert.Equal(new ResourceCapacity(), HostCapacity.Declared(new SchedulingOptions { CapacityFromContainer = true }, _cgroup));
        Assert.Equal(new ResourceCapacity(), HostCapacity.Declared(new SchedulingOptions { CapacityFromContainer = true }, Path.Combine(_cgroup, "absent")));

        Write("cpu.max", "lots");
        var error = Assert.Throws<FormatException>(() => HostCapacity.Declared(new SchedulingOptions { CapacityFromContainer = true }, _cgroup));
        Assert.Contains("cpu.max", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Capacity_binds_from_configuration_and_a_negative_amount_fails_validation_naming_its_key()
    {
        var bound = Options(new() { ["Scheduling:Capacity:MemoryMb"] = "4096", ["Scheduling:Capacity:Gpus"] = "1", ["Scheduling:CapacityFromContainer"] = "true" });
        Assert.Equal(new ResourceCapacity { MemoryMb = 4_096, Gpus = 1 }, bound.Capacity);
        Assert.True(bound.CapacityFromContainer);

        var error = Assert.Throws<OptionsValidationException>(() => Options(new() { ["Scheduling:Capacity:CpuMillicores"] = "-5" }));
        Assert.Contains(error.Failures, f => f.Contains("Scheduling:Capacity.CpuMillicores", StringComparison.Ordinal) && f.Contains("-5", StringComparison.Ordinal));
    }

    private static SchedulingOptions Options(Dictionary<string, string?> settings)
    {
        var services = new ServiceCollection().AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        services.AddScheduling();
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<SchedulingOptions>>().Value;
    }

    [Fact]
    public void The_fitting_prefix_stops_at_the_first_job_that_does_not_fit_in_every_amount()
    {
        static ResourceAllocation Need(int memory, int cpu = 0, int gpus = 0) => new()
        {
            DefinitionId = "d", MemoryMb = memory, CpuMillicores = cpu, Gpus = gpus, BaselineMemoryMb = memory, Source = AllocationSource.Baseline, SkipReason = AraSkipReason.None,
        };
        var free = new ResourceCapacity { MemoryMb = 1_000, CpuMillicores = 2_000 };

        Assert.Equal(2, ResourceCapacity.FittingPrefix([Need(500), null, Need(600), Need(1)], free));
        Assert.Equal(1, ResourceCapacity.FittingPrefix([Need(100, 1_500), Need(100, 600)], free));
        Assert.Equal(3, ResourceCapacity.FittingPrefix([Need(0, 0, 5), Need(1_000), null], free)); // GPUs unlimited here
        Assert.Equal(0, ResourceCapacity.FittingPrefix([Need(1_001)], free));
        Assert.Equal(new ResourceCapacity { MemoryMb = 0, CpuMillicores = 500 }, ResourceCapacity.Remaining(free, [Need(700, 1_000), Need(700, 500), null]));
    }
}
