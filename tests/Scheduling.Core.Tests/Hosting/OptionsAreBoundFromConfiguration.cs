using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Scheduling.Core.Tests.Hosting;

/// <summary>One options convention: the Scheduling section (files, environment variables) first, then code, validated at start-up.</summary>
public sealed class OptionsAreBoundFromConfiguration
{
    [Fact]
    public void The_scheduling_section_and_environment_variables_bind_the_options_and_code_configures_last()
    {
        var prefix = $"SCHEDTEST_{Guid.NewGuid():N}_";
        Environment.SetEnvironmentVariable(prefix + "Scheduling__LeaseDuration", "00:02:00");
        try
        {
            var configuration = new ConfigurationBuilder()
                .AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Scheduling:WorkerId"] = "from-config",
                    ["Scheduling:Queues:reports:Concurrency"] = "3",
                    ["Scheduling:Queue:MaxErrorsKept"] = "7",
                    ["Scheduling:HeartbeatInterval"] = "00:00:20",
                })
                .AddEnvironmentVariables(prefix)
                .Build();
            var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
            services.AddScheduling(s => s.Configure(o => o.HeartbeatInterval = TimeSpan.FromSeconds(10)));
            using var provider = services.BuildServiceProvider();

            var options = provider.GetRequiredService<IOptions<SchedulingOptions>>().Value;

            Assert.Equal("from-config", options.WorkerId);
            Assert.Equal(3, options.Queues["reports"].Concurrency);
            Assert.Equal(7, options.Queue.MaxErrorsKept);
            Assert.Equal(TimeSpan.FromMinutes(2), options.LeaseDuration); // from the environment
            Assert.Equal(TimeSpan.FromSeconds(10), options.HeartbeatInterval); // code wins over configuration
        }
        finally
        {
            Environment.SetEnvironmentVariable(prefix + "Scheduling__LeaseDuration", null);
        }
    }

    [Fact]
    public void A_bad_value_in_configuration_fails_validation_naming_its_key()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Scheduling:Queues:reports:Concurrency"] = "0" }).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
        services.AddScheduling();
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<SchedulingOptions>>().Value);

        Assert.Contains(error.Failures, f => f.Contains("Scheduling:Queues:reports", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_configuration_the_defaults_and_code_apply()
    {
        var services = new ServiceCollection();
        services.AddScheduling(s => s.Configure(o => o.WorkerId = "code"));
        using var provider = services.BuildServiceProvider();

        Assert.Equal("code", provider.GetRequiredService<IOptions<SchedulingOptions>>().Value.WorkerId);
    }
}
