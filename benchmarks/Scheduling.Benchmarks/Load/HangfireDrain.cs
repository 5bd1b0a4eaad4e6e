using System.Diagnostics;
using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Npgsql;

namespace Scheduling.Benchmarks.Load;

/// <summary>The same drain through Hangfire.PostgreSql on the same server: the side-by-side baseline.</summary>
internal static class HangfireDrain
{
    public static async Task<LoadResult> RunAsync(string connectionString, int jobs, int workers)
    {
        var schema = $"load_hangfire_{Guid.NewGuid().ToString("N")[..6]}";
        var options = new PostgreSqlStorageOptions
        {
            SchemaName = schema,
            PrepareSchemaIfNecessary = true,
            QueuePollInterval = TimeSpan.FromMilliseconds(50),
            UseSlidingInvisibilityTimeout = true,
        };
        var storage = new PostgreSqlStorage(new NpgsqlConnectionFactory(connectionString, options), options);
        try
        {
            var client = new BackgroundJobClient(storage);
            for (var i = 0; i < jobs; i++) client.Enqueue<NoOpJob>(j => j.Run());

            var clock = Stopwatch.StartNew();
            using (new BackgroundJobServer(new BackgroundJobServerOptions { WorkerCount = workers, Queues = ["default"] }, storage))
            {
                var monitor = storage.GetMonitoringApi();
                while (monitor.SucceededListCount() < jobs && clock.Elapsed < TimeSpan.FromMinutes(20)) await Task.Delay(20);
                clock.Stop();
                var verified = monitor.SucceededListCount() == jobs && monitor.FailedCount() == 0;
                return new LoadResult("hangfire", jobs, workers, clock.Elapsed.TotalSeconds, null, null, verified);
            }
        }
        finally
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
            await drop.ExecuteNonQueryAsync();
        }
    }

    /// <summary>The no-op job Hangfire runs.</summary>
    public sealed class NoOpJob
    {
        public void Run()
        {
        }
    }
}
