using System.Collections.Concurrent;

namespace Scheduling.Internal;

/// <summary>
/// Wakes idle fetch loops when a queue gets work: fed by the PostgreSQL LISTEN connection or by
/// the in-memory queue. A missed signal only costs a poll interval.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public sealed class QueueSignals
{
    private readonly ConcurrentDictionary<string, Signal> _signals = new(StringComparer.Ordinal);

    /// <summary>The signal of a change to stored recurring jobs: never a queue name (queue names cannot hold '#'), sent on the queue's channel.</summary>
    public const string RecurringJobsChanged = "#recurring";

    /// <summary>Wakes the loops waiting on <paramref name="queue"/>.</summary>
    public void Notify(string queue)
    {
        if (_signals.TryGetValue(queue, out var signal)) signal.Set();
    }

    /// <summary>Makes the queues share one signal, so a loop waiting on the first wakes for work in any of them.</summary>
    public void Join(IReadOnlyList<string> queues)
    {
        if (queues.Count < 2) return;
        var shared = _signals.GetOrAdd(queues[0], static _ => new Signal());
        foreach (var queue in queues.Skip(1)) _signals[queue] = shared;
    }

    /// <summary>Wakes every waiting loop (after a rescue, say).</summary>
    public void NotifyAll()
    {
        foreach (var signal in _signals.Values) signal.Set();
    }

    /// <summary>A task that completes at the next notification of <paramref name="name"/> (or at once, consuming one already pending).</summary>
    public Task NextAsync(string name) => Next(_signals.GetOrAdd(name, static _ => new Signal()));

    private static Task Next(Signal signal)
    {
        var task = signal.Current;
        if (task.IsCompleted) signal.Reset();
        return task;
    }

    /// <summary>Waits until the queue is notified, the timeout passes, or the token is cancelled; true when notified.</summary>
    public async Task<bool> WaitAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var signal = _signals.GetOrAdd(queue, static _ => new Signal());
        var task = Next(signal);
        if (task.IsCompleted) return true;
        try
        {
            await task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            signal.Reset(); // consumed: the next wait waits for the next notification
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private sealed class Signal
    {
        private TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Current => Volatile.Read(ref _tcs).Task;

        public void Set() => Volatile.Read(ref _tcs).TrySetResult();

        public void Reset()
        {
            var current = Volatile.Read(ref _tcs);
            if (current.Task.IsCompleted)
                Interlocked.CompareExchange(ref _tcs, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), current);
        }
    }
}
