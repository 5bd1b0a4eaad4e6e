using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Scheduling.QueueContract;
using Xunit;

namespace Scheduling.Postgres.Tests.Hosting;

/// <summary>The host's LISTEN connection goes back to the pool only after it stops listening.</summary>
public sealed class ListenConnectionTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task A_stopped_host_leaves_no_pooled_connection_listening()
    {
        var schema = database.NewSchema();
        // A small pool, not reset on return: whoever borrows a connection next would inherit a LISTEN left on it.
        const int pool = 4;
        var settings = new NpgsqlConnectionStringBuilder(database.ConnectionString) { MaxPoolSize = pool, NoResetOnClose = true };
        await using var dataSource = NpgsqlDataSource.Create(settings.ConnectionString);
        var services = new ServiceCollection().AddLogging();
        services.AddScheduling(s => s.UsePostgres(o => { o.UseDataSource(dataSource); o.Schema = schema; }).Configure(o => o.AddQueue("default", 1)));
        await using var provider = services.BuildServiceProvider();
        var hosts = provider.GetServices<IHostedService>().ToArray();
        foreach (var host in hosts) await host.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(async () => await ListenersAsync() > 0, "the host listens");

        foreach (var host in hosts.Reverse()) await host.StopAsync(CancellationToken.None);

        var connections = new List<NpgsqlConnection>();
        try
        {
            for (var i = 0; i < pool; i++) connections.Add(await dataSource.OpenConnectionAsync()); // every pooled connection, the listener's among them
            foreach (var connection in connections)
            {
                await using var channels = new NpgsqlCommand("SELECT count(*) FROM pg_listening_channels()", connection);
                Assert.Equal(0L, await channels.ExecuteScalarAsync());
            }
        }
        finally
        {
            foreach (var connection in connections) await connection.DisposeAsync();
        }
    }

    private async Task<long> ListenersAsync()
    {
        await using var command = database.DataSource.CreateCommand("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()");
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
