using Npgsql;

namespace Scheduling.Postgres;

/// <summary>
/// Runs a transaction again when PostgreSQL aborted it to break a deadlock. Transactions that lock
/// rows other transactions lock in another order meet so: a graph's enqueue lending priority up
/// while completions release children down, acknowledgements of members of two batches counting
/// them in different orders. The aborted run wrote nothing, and every such transaction is safe to
/// run again (acknowledgements are fenced by their leases).
/// </summary>
internal static class DeadlockRetry
{
    public const int MaxAttempts = 3;

    public static async Task<T> RunAsync<T>(Func<Task<T>> run, CancellationToken cancellationToken, bool retry = true)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await run().ConfigureAwait(false);
            }
            catch (PostgresException ex) when (retry && ex.SqlState == PostgresErrorCodes.DeadlockDetected && attempt < MaxAttempts)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 50) * attempt), cancellationToken).ConfigureAwait(false); // real time: a test clock may stand still
            }
        }
    }
}
