using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Scheduling.Hosting;

namespace Scheduling;

/// <summary>
/// Health of this host's scheduling: the job store answers, the workers are fetching, and no due
/// job has waited longer than <see cref="SchedulingOptions.HealthMaxDueAge"/>. Register it with
/// <c>services.AddHealthChecks().AddCheck&lt;SchedulingHealthCheck&gt;("scheduling")</c>.
/// </summary>
public sealed class SchedulingHealthCheck : IHealthCheck
{
    private readonly IJobQueue _queue;
    private readonly SchedulingOptions _options;
    private readonly TimeProvider _time;
    private readonly WorkerStatus _status;

    internal SchedulingHealthCheck(IJobQueue queue, IOptions<SchedulingOptions> options, TimeProvider time, WorkerStatus status)
    {
        _queue = queue;
        _options = options.Value;
        _time = time;
        _status = status;
    }

    /// <inheritdoc />
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>();
        IReadOnlyList<QueueStats> stats;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            stats = await _queue.GetQueueStatsAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy(_status.StoreRefusal is { } refusal ? $"The job store refuses this host: {refusal}" : "The job store cannot be read.", ex);
        }

        var now = _time.GetUtcNow();
        var problems = new List<string>();
        foreach (var q in stats)
        {
            if (q.Oversized > 0)
            {
                data[$"oversized:{q.Queue}"] = q.Oversized;
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"queue '{q.Queue}' holds {q.Oversized} job(s) larger than any of its {q.Hosts} live host(s) can hold"));
            }

            if (q.OldestDue is not { } due) continue;
            var age = q.OldestDueAge ?? now - due; // on the store's clock when it says: a host's skewed clock cannot make a queue look stuck

            data[$"oldest_due_seconds:{q.Queue}"] = Math.Round(age.TotalSeconds, 1);
            if (age > _options.HealthMaxDueAge) problems.Add(string.Create(CultureInfo.InvariantCulture, $"queue '{q.Queue}' has a job due {age.TotalSeconds:0} s ago"));
        }

        if (_options.RunWorkers && _status.CompleterError is { } stopped)
            return HealthCheckResult.Unhealthy("The acknowledgement writer has stopped: finished jobs are not recorded and will run again.", stopped, data);

        if (_options.RunWorkers)
        {
            data["worker_id"] = _status.WorkerId ?? "(not started)";
            var stale = _options.PollInterval * 5 + TimeSpan.FromSeconds(5);
            foreach (var queue in _status.Queues)
            {
                var last = _status.LastFetch.TryGetValue(queue, out var at) ? at : (DateTimeOffset?)null;
                data[$"last_fetch:{queue}"] = last?.ToString("O", CultureInfo.InvariantCulture) ?? "never";
                // A loop that is busy running jobs does not fetch; only an idle, silent loop is a problem.
                var running = stats.FirstOrDefault(s => s.Queue == queue)?.Running ?? 0;
                if (_status.Running && running == 0 && (last is null || now - last > stale)) problems.Add($"workers of queue '{queue}' are not fetching");
            }

            if (!_status.Running) problems.Add("the worker host is not running");
        }

        return problems.Count == 0
            ? HealthCheckResult.Healthy("Scheduling is healthy.", data)
            : HealthCheckResult.Degraded(string.Join("; ", problems) + ".", data: data);
    }
}
