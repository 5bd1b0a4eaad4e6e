using Microsoft.Extensions.Logging;

namespace Scheduling.Internal;

/// <summary>
/// The one loop skeleton of the hosts' periodic services (lease keeper, rescuer, pruner, depth
/// sampler, and PostgreSQL's storage monitor): run a round every interval until stopped; a failed round is reported and the next one
/// waits <see cref="DelayAfterFailure"/> instead, so a database outage neither kills the loop nor
/// makes it spin.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public abstract class PeriodicService(TimeProvider time, ILogger logger)
{
    /// <summary>The clock the service waits on.</summary>
    protected TimeProvider Time { get; } = time;

    /// <summary>Where the service reports.</summary>
    protected ILogger Logger { get; } = logger;

    /// <summary>The pause between rounds.</summary>
    protected abstract TimeSpan Interval { get; }

    /// <summary>True to run the first round at once instead of after one interval.</summary>
    protected virtual bool RunsAtStart => false;

    /// <summary>One round of the service's work.</summary>
    public abstract Task RunOnceAsync(CancellationToken cancellationToken);

    /// <summary>Reports a failed round (log, status).</summary>
    protected abstract void OnFailure(Exception exception, TimeSpan retryIn);

    /// <summary>How long to wait after <paramref name="failures"/> rounds failed in a row.</summary>
    protected virtual TimeSpan DelayAfterFailure(int failures) => Interval;

    /// <summary>Runs rounds until <paramref name="stoppingToken"/> is cancelled; never throws for a failed round.</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        var delay = RunsAtStart ? TimeSpan.Zero : Interval;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (delay > TimeSpan.Zero) await Task.Delay(delay, Time, stoppingToken).ConfigureAwait(false);
                await RunOnceAsync(stoppingToken).ConfigureAwait(false);
                failures = 0;
                delay = Interval;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                delay = DelayAfterFailure(++failures);
                OnFailure(ex, delay);
            }
        }
    }
}
