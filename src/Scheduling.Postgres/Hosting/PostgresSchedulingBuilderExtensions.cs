using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Scheduling.Hosting;
using Scheduling.Postgres;

namespace Scheduling;

/// <summary>Chooses PostgreSQL as the job store.</summary>
public static class PostgresSchedulingBuilderExtensions
{
    /// <summary>Stores jobs in PostgreSQL at <paramref name="connectionString"/>.</summary>
    /// <exception cref="ArgumentException">No connection string was given (typically <c>GetConnectionString("jobs")</c> returned null).</exception>
    public static SchedulingBuilder UsePostgres(this SchedulingBuilder builder, string connectionString, Action<PostgresQueueOptions>? configure = null)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new ArgumentException(
                "UsePostgres: no connection string (is ConnectionStrings:jobs set?). Pass one, or write UsePostgres(o => o.ConnectionStringName = \"jobs\") to read it from configuration when the host starts.",
                nameof(connectionString));
        return builder.UsePostgres(o =>
        {
            o.ConnectionString = connectionString;
            configure?.Invoke(o);
        });
    }

    /// <summary>
    /// Stores jobs in PostgreSQL with the options of the <c>Scheduling:Postgres</c> configuration
    /// section (e.g. <c>"Scheduling": { "Postgres": { "ConnectionStringName": "jobs" } }</c>).
    /// </summary>
    public static SchedulingBuilder UsePostgres(this SchedulingBuilder builder) => builder.UsePostgres(static _ => { });

    /// <summary>
    /// Stores jobs in PostgreSQL. Options are bound from the <c>Scheduling:Postgres</c> configuration
    /// section when the host has one, then <paramref name="configure"/> runs; both are validated at
    /// start-up. The data source is the first given of: <see cref="PostgresQueueOptions.UseDataSource"/>,
    /// an <see cref="NpgsqlDataSource"/> registered under the key <see cref="PostgresQueueOptions.DataSourceKey"/>,
    /// one built from <see cref="PostgresQueueOptions.ConnectionString"/> or the connection string named by
    /// <see cref="PostgresQueueOptions.ConnectionStringName"/>, or, when <see cref="PostgresQueueOptions.UseRegisteredDataSource"/>
    /// is set, the unkeyed one registered in the container. The host logs which it uses.
    /// </summary>
    public static SchedulingBuilder UsePostgres(this SchedulingBuilder builder, Action<PostgresQueueOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var services = builder.Services;
        services.AddBoundOptions<PostgresQueueOptions>(PostgresQueueOptions.Section, static (section, options) => section.Bind(options)).Configure(configure);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PostgresQueueOptions>, PostgresQueueOptionsValidator>());
        services.TryAddSingleton<PostgresDataSourceHolder>();
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<PostgresQueueOptions>>().Value;
            return new PostgresJobQueue(
                sp.GetRequiredService<PostgresDataSourceHolder>().DataSource,
                options,
                sp.GetRequiredService<IOptions<SchedulingOptions>>().Value.Queue,
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ResourceAllocator>());
        });
        services.TryAddSingleton(sp => new PostgresRunHistory(
            sp.GetRequiredService<PostgresDataSourceHolder>().DataSource,
            sp.GetRequiredService<IOptions<PostgresQueueOptions>>().Value,
            sp.GetRequiredService<IOptions<SchedulingOptions>>().Value.Ara,
            sp.GetRequiredService<TimeProvider>()));
        services.RemoveDefaultQueue();
        services.TryAddSingleton<IResourceEstimator>(sp => sp.GetRequiredService<PostgresRunHistory>());
        services.TryAddSingleton<IRunHistoryStore>(sp => sp.GetRequiredService<PostgresRunHistory>());
        services.TryAddSingleton<IJobQueue>(sp => sp.GetRequiredService<PostgresJobQueue>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IJobQueueInitializer, PostgresQueueInitializer>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgresNotificationListenerHost>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgresStorageMonitor>());
        return builder;
    }
}

/// <summary>Resolves (and, when it built it, owns) the data source.</summary>
internal sealed partial class PostgresDataSourceHolder : IAsyncDisposable, IDisposable
{
    private readonly NpgsqlDataSource? _owned;

    public PostgresDataSourceHolder(IOptions<PostgresQueueOptions> options, IServiceProvider services, ILogger<PostgresDataSourceHolder>? logger = null)
    {
        var o = options.Value;
        string source;
        if (o.DataSource() is { } given) (DataSource, source) = (given, "the data source given in its options (UseDataSource)");
        else if ((services as IKeyedServiceProvider)?.GetKeyedService(typeof(NpgsqlDataSource), PostgresQueueOptions.DataSourceKey) is NpgsqlDataSource keyed)
            (DataSource, source) = (keyed, $"the NpgsqlDataSource registered under the key '{PostgresQueueOptions.DataSourceKey}'");
        else if (!string.IsNullOrWhiteSpace(o.ConnectionString)) (DataSource, source) = (_owned = Build(o.ConnectionString), "its connection string");
        else if (!string.IsNullOrWhiteSpace(o.ConnectionStringName))
        {
            var named = services.GetService<IConfiguration>()?.GetConnectionString(o.ConnectionStringName);
            if (string.IsNullOrWhiteSpace(named))
                throw new InvalidOperationException($"UsePostgres: no connection string named '{o.ConnectionStringName}' (is ConnectionStrings:{o.ConnectionStringName} set?).");
            (DataSource, source) = (_owned = Build(named), $"the connection string '{o.ConnectionStringName}'");
        }
        else if (o.UseRegisteredDataSource)
        {
            DataSource = services.GetService<NpgsqlDataSource>() ?? throw new InvalidOperationException(
                "UsePostgres: UseRegisteredDataSource is set, but no NpgsqlDataSource is registered in the container (AddNpgsqlDataSource or AddSingleton<NpgsqlDataSource>).");
            source = "the NpgsqlDataSource registered in the container (UseRegisteredDataSource)";
        }
        else throw new InvalidOperationException(
            $"UsePostgres: no connection string (is ConnectionStrings:jobs set, with {PostgresQueueOptions.Section}:ConnectionStringName = \"jobs\"?). "
            + $"Give one: UsePostgres(connectionString), {PostgresQueueOptions.Section}:ConnectionString, UseDataSource in its options, a keyed NpgsqlDataSource '{PostgresQueueOptions.DataSourceKey}', or UseRegisteredDataSource = true.");

        var settings = new NpgsqlConnectionStringBuilder(DataSource.ConnectionString);
        if (logger is not null) UsingSource(logger, source, settings.Host ?? "(default host)", settings.Port, settings.Database ?? "(default database)", o.Schema);
    }

    [LoggerMessage(1102, LogLevel.Information, "Jobs are stored through {Source}: host {Host}, port {Port}, database {Database}, schema {Schema}")]
    private static partial void UsingSource(ILogger logger, string source, string host, int port, string database, string schema);

    public NpgsqlDataSource DataSource { get; }

    internal static NpgsqlDataSource Build(string connectionString) => WithQueueDefaults(new NpgsqlDataSourceBuilder(connectionString)).Build();

    /// <summary>
    /// The settings a data source built for the queue gets unless its connection string says otherwise:
    /// <list type="bullet">
    /// <item>statements used twice are prepared automatically (the queue runs a handful of statements
    /// over and over; preparing saves a parse and a plan per call: measured ~35 % more drain throughput);</item>
    /// <item>no session reset when a connection goes back to the pool (the queue sets no session state,
    /// and the reset is four more statements on every rental: measured ~25 % more drain-single throughput).</item>
    /// </list>
    /// </summary>
    internal static NpgsqlDataSourceBuilder WithQueueDefaults(NpgsqlDataSourceBuilder builder)
    {
        var settings = builder.ConnectionStringBuilder;
        if (settings.MaxAutoPrepare == 0)
        {
            settings.MaxAutoPrepare = 32;
            settings.AutoPrepareMinUsages = 2;
        }

        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = settings.ConnectionString };
        if (!given.ContainsKey("No Reset On Close") && !given.ContainsKey("NoResetOnClose")) settings.NoResetOnClose = true;
        return builder;
    }

    public ValueTask DisposeAsync() => _owned?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>For a container disposed synchronously (<c>using var provider = …</c>), which refuses an async-only service.</summary>
    public void Dispose() => _owned?.Dispose();
}

internal sealed class PostgresQueueInitializer(PostgresJobQueue queue, PostgresDataSourceHolder holder, IOptions<PostgresQueueOptions> options) : IJobQueueInitializer
{
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (options.Value.ApplyMigrations) await queue.MigrateAsync(cancellationToken).ConfigureAwait(false);
            else await queue.VerifySchemaAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (PermanentCause(ex, new NpgsqlConnectionStringBuilder(holder.DataSource.ConnectionString), options.Value.Schema) is { } cause)
        {
            throw new JobStoreUnavailableException(cause, ex);
        }
    }

    /// <summary>The cause and the fix of an error that retrying cannot cure, or null for one that may pass.</summary>
    internal static string? PermanentCause(PostgresException error, NpgsqlConnectionStringBuilder connection, string schema) => error.SqlState switch
    {
        PostgresErrorCodes.InvalidCatalogName => $"database '{connection.Database}' does not exist on {connection.Host}:{connection.Port} (create it, or fix Database= in the connection string)",
        PostgresErrorCodes.InvalidPassword => $"password authentication failed for user '{connection.Username}' (fix Password= in the connection string, or the role's password)",
        PostgresErrorCodes.InvalidAuthorizationSpecification => $"the server does not let user '{connection.Username}' connect to database '{connection.Database}': {error.MessageText} (check the role and pg_hba.conf)",
        PostgresErrorCodes.InsufficientPrivilege => $"user '{connection.Username}' lacks a privilege on schema '{schema}': {error.MessageText} (grant what docs/operations.md lists, or migrate once as the owner with `scheduling migrate`)",
        _ => null,
    };
}

/// <summary>Runs the LISTEN connection only when enabled and when this host runs workers.</summary>
internal sealed class PostgresNotificationListenerHost(
    IServiceProvider services,
    IOptions<PostgresQueueOptions> postgres,
    IOptions<SchedulingOptions> scheduling) : IHostedService
{
    private PostgresNotificationListener? _listener;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!postgres.Value.ListenForNotifications || !scheduling.Value.RunWorkers) return Task.CompletedTask;
        _listener = ActivatorUtilities.CreateInstance<PostgresNotificationListener>(services, services.GetRequiredService<PostgresDataSourceHolder>().DataSource);
        return _listener.StartAsync(cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_listener is null) return;
        await _listener.StopAsync(cancellationToken).ConfigureAwait(false);
        _listener.Dispose();
    }
}
