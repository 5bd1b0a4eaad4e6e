using Scheduling.QueueContract;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit;

namespace Scheduling.Postgres.Tests.Hosting;

/// <summary>UsePostgres() takes its options, and its connection by name, from configuration.</summary>
public sealed class PostgresOptionsFromConfigurationTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task The_postgres_section_names_the_schema_and_the_connection_string()
    {
        var schema = $"cfg_{Guid.NewGuid():N}"[..20];
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:jobs"] = database.ConnectionString,
            ["Scheduling:Postgres:ConnectionStringName"] = "jobs",
            ["Scheduling:Postgres:Schema"] = schema,
            ["Scheduling:Postgres:CopyThreshold"] = "5",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration);
        services.AddScheduling(s => s.UsePostgres());
        await using var provider = services.BuildServiceProvider();

        var queue = provider.GetRequiredService<IJobQueue>();
        var id = (await queue.EnqueueAsync(new JobRequest("configured"))).JobId;

        Assert.Equal(5, provider.GetRequiredService<IOptions<PostgresQueueOptions>>().Value.CopyThreshold);
        Assert.Equal(schema, Assert.IsType<PostgresJobQueue>(queue).Schema);
        await using var count = database.DataSource.CreateCommand($"SELECT count(*) FROM \"{schema}\".jobs WHERE id = $1");
        count.Parameters.AddWithValue(id);
        Assert.Equal(1L, await count.ExecuteScalarAsync());
    }

    [Fact]
    public void A_named_connection_string_that_is_not_there_is_named_in_the_error()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Scheduling:Postgres:ConnectionStringName"] = "jobs" }).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration);
        services.AddScheduling(s => s.UsePostgres());
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IJobQueue>());

        Assert.Equal("UsePostgres: no connection string named 'jobs' (is ConnectionStrings:jobs set?).", error.Message);
    }

    private const string Elsewhere = "Host=127.0.0.1;Port=1;Database=the_applications_own;Username=app";

    private static (int Port, string? Database) SourceOf(Action<IServiceCollection> register, Action<SchedulingBuilder> configure, FakeLogCollector? logs = null)
    {
        var services = new ServiceCollection().AddLogging(l => { if (logs is not null) l.AddProvider(new FakeLoggerProvider(logs)); });
        register(services);
        services.AddScheduling(configure);
        using var provider = services.BuildServiceProvider();
        var settings = new NpgsqlConnectionStringBuilder(provider.GetRequiredService<PostgresDataSourceHolder>().DataSource.ConnectionString);
        return (settings.Port, settings.Database);
    }

    [Fact]
    public void An_explicit_connection_string_wins_over_a_data_source_the_application_registered_and_the_choice_is_logged()
    {
        var expected = new NpgsqlConnectionStringBuilder(database.ConnectionString);
        var logs = new FakeLogCollector();
        using var applications = NpgsqlDataSource.Create(Elsewhere);

        var used = SourceOf(s => s.AddSingleton(applications), s => s.UsePostgres(database.ConnectionString), logs);

        Assert.Equal((expected.Port, expected.Database), used); // before: the application's source, so the jobs schema landed in its database
        Assert.Contains(logs.GetSnapshot(), r => r.Message.StartsWith("Jobs are stored through its connection string", StringComparison.Ordinal) && r.Message.Contains($"database {expected.Database}", StringComparison.Ordinal));
    }

    [Fact]
    public void A_registered_data_source_is_used_when_asked_by_key_or_by_option_and_asking_for_a_missing_one_is_named()
    {
        using var applications = NpgsqlDataSource.Create(Elsewhere);
        Assert.Equal((1, "the_applications_own"), SourceOf(s => s.AddSingleton(applications), s => s.UsePostgres(o => o.UseRegisteredDataSource = true)));
        Assert.Equal((1, "the_applications_own"), SourceOf(s => s.AddKeyedSingleton(PostgresQueueOptions.DataSourceKey, applications), s => s.UsePostgres(database.ConnectionString)));

        var error = Assert.Throws<InvalidOperationException>(() => SourceOf(_ => { }, s => s.UsePostgres(o => o.UseRegisteredDataSource = true)));
        Assert.StartsWith("UsePostgres: UseRegisteredDataSource is set, but no NpgsqlDataSource is registered", error.Message, StringComparison.Ordinal);
        var none = Assert.Throws<InvalidOperationException>(() => SourceOf(s => s.AddSingleton(applications), s => s.UsePostgres()));
        Assert.StartsWith("UsePostgres: no connection string (is ConnectionStrings:jobs set", none.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_connection_string_passed_in_code_is_named_not_a_bare_null_argument()
    {
        var configuration = new ConfigurationBuilder().Build(); // no ConnectionStrings:jobs
        var error = Assert.Throws<ArgumentException>(() => new ServiceCollection().AddScheduling(s => s.UsePostgres(configuration.GetConnectionString("jobs")!)));

        Assert.Equal("connectionString", error.ParamName);
        Assert.StartsWith("UsePostgres: no connection string (is ConnectionStrings:jobs set?).", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_value_out_of_its_range_is_named_by_its_configuration_key()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Scheduling:Postgres:ConnectionString"] = database.ConnectionString,
            ["Scheduling:Postgres:RescueBatchSize"] = "0",
            ["Scheduling:Postgres:Schema"] = "Bad Schema",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration);
        services.AddScheduling(s => s.UsePostgres());
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<PostgresQueueOptions>>().Value);

        Assert.Contains("Scheduling:Postgres:RescueBatchSize must be between 1 and 100000.", error.Failures);
        Assert.Contains(error.Failures, f => f.StartsWith("Scheduling:Postgres:Schema: ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_health_check_measures_a_due_jobs_wait_on_the_database_clock_not_a_skewed_host_clock()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<TimeProvider>(new FakeTimeProvider(DateTimeOffset.UtcNow + TimeSpan.FromDays(1))); // this host's clock is a day ahead
        services.AddScheduling(s => s.UsePostgres(database.ConnectionString, o => o.Schema = database.NewSchema()).Configure(o => o.RunWorkers = false));
        await using var provider = services.BuildServiceProvider();
        var queue = provider.GetRequiredService<IJobQueue>();
        await queue.EnqueueAsync(new JobRequest("due-now"));

        var result = await provider.GetRequiredService<SchedulingHealthCheck>().CheckHealthAsync(new HealthCheckContext());

        Assert.Equal(HealthStatus.Healthy, result.Status);
        Assert.True((double)result.Data["oldest_due_seconds:default"] < 600, $"waited {result.Data["oldest_due_seconds:default"]} s by the host's clock");
    }

    [Fact]
    public async Task A_database_that_does_not_exist_is_reported_once_at_critical_in_one_line_and_named_by_the_health_check()
    {
        var missing = new NpgsqlConnectionStringBuilder(database.ConnectionString) { Database = "no_such_database" }.ConnectionString;
        var logs = new FakeLogCollector();
        var services = new ServiceCollection().AddLogging(l => l.AddProvider(new FakeLoggerProvider(logs)).SetMinimumLevel(LogLevel.Information));
        services.AddScheduling(s => s.UsePostgres(missing).Configure(o => o.AddQueue("default", 1)));
        await using var provider = services.BuildServiceProvider();
        var hosts = provider.GetServices<Microsoft.Extensions.Hosting.IHostedService>().ToArray();
        foreach (var host in hosts) await host.StartAsync(CancellationToken.None);

        await Eventually.HoldsAsync(() => Task.FromResult(logs.GetSnapshot().Any(r => r.Level == LogLevel.Critical)), "the refusal is logged");
        var health = await provider.GetRequiredService<SchedulingHealthCheck>().CheckHealthAsync(new HealthCheckContext());
        foreach (var host in hosts.Reverse()) await host.StopAsync(CancellationToken.None);

        var critical = Assert.Single(logs.GetSnapshot(), r => r.Level == LogLevel.Critical);
        Assert.StartsWith("The job store refuses this host: database 'no_such_database' does not exist on ", critical.Message, StringComparison.Ordinal);
        Assert.Null(critical.Exception); // one line, not a stack trace
        Assert.DoesNotContain(logs.GetSnapshot(), r => r.Level >= LogLevel.Warning && r.Exception is not null && (r.Category ?? "").StartsWith("Scheduling", StringComparison.Ordinal));
        Assert.Equal(HealthStatus.Unhealthy, health.Status);
        Assert.Contains("database 'no_such_database' does not exist", health.Description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(PostgresErrorCodes.InvalidCatalogName, "database 'jobs' does not exist on db:5432 (create it")]
    [InlineData(PostgresErrorCodes.InvalidPassword, "password authentication failed for user 'app' (fix Password=")]
    [InlineData(PostgresErrorCodes.InsufficientPrivilege, "user 'app' lacks a privilege on schema 'scheduling': permission denied")]
    [InlineData(PostgresErrorCodes.ConnectionFailure, null)]
    [InlineData(PostgresErrorCodes.AdminShutdown, null)]
    public void Errors_retrying_cannot_fix_are_told_from_those_that_pass(string sqlState, string? expected)
    {
        var error = new PostgresException("permission denied for schema scheduling", "FATAL", "FATAL", sqlState);
        var cause = PostgresQueueInitializer.PermanentCause(error, new NpgsqlConnectionStringBuilder("Host=db;Port=5432;Database=jobs;Username=app"), "scheduling");

        if (expected is null) Assert.Null(cause);
        else Assert.StartsWith(expected, cause, StringComparison.Ordinal);
    }
}
