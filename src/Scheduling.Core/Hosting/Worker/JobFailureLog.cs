using Microsoft.Extensions.Logging;

namespace Scheduling.Hosting;

/// <summary>
/// What a user must see without asking: a failed attempt at Warning with its exception, a job gone
/// dead at Error with its last error. Written under its own category (<see cref="Category"/>), so
/// it can be turned down (<c>Logging:LogLevel:Scheduling.Jobs</c>) without losing the host's own
/// warnings, and limited per kind and level (<see cref="LinesPerWindow"/> lines a
/// <see cref="Window"/>; the lines held back are counted in the next one), so a storm of failures
/// cannot flood the log.
/// </summary>
internal sealed partial class JobFailureLog(ILogger logger, TimeProvider time)
{
    /// <summary>The logger category of job failures.</summary>
    public const string Category = "Scheduling.Jobs";

    /// <summary>At most this many lines per kind and level in one <see cref="Window"/>.</summary>
    public const int LinesPerWindow = 10;

    /// <summary>The window of the limit.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    /// <summary>Beyond this many kinds, the rest share one limit (kinds come from stored jobs, not only from handlers).</summary>
    private const int MaxKindsTracked = 1000;

    private readonly Dictionary<(string Kind, LogLevel Level), Limit> _limits = [];
    private readonly Lock _gate = new();

    private sealed class Limit
    {
        public DateTimeOffset Start;
        public int Written;
        public int HeldBack;
    }

    /// <summary>A handler threw: the attempt fails (retried or not, as the store decides).</summary>
    public void Failed(AcquiredJob job, Exception exception)
    {
        if (!logger.IsEnabled(LogLevel.Warning) || !Admit(job.Kind, LogLevel.Warning, out var heldBack)) return;
        AttemptFailed(logger, exception, job.Id, job.Kind, job.Queue, job.Attempt, job.MaxAttempts, heldBack);
    }

    /// <summary>The store made the job dead (its last attempt failed, or its failure was permanent).</summary>
    public void Dead(AcquiredJob job, string? lastError)
    {
        if (!logger.IsEnabled(LogLevel.Error) || !Admit(job.Kind, LogLevel.Error, out var heldBack)) return;
        JobDead(logger, job.Id, job.Kind, job.Queue, job.Attempt, FirstLine(lastError), heldBack);
    }

    /// <summary>Whether a line may be written now; when it may, how many were held back before it in this window or the last.</summary>
    private bool Admit(string kind, LogLevel level, out int heldBack)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            var key = _limits.Count < MaxKindsTracked || _limits.ContainsKey((kind, level)) ? (kind, level) : ("*", level);
            if (!_limits.TryGetValue(key, out var limit)) _limits[key] = limit = new Limit { Start = now };
            if (now - limit.Start >= Window)
            {
                limit.Start = now;
                limit.Written = 0;
            }

            if (limit.Written >= LinesPerWindow)
            {
                limit.HeldBack++;
                heldBack = 0;
                return false;
            }

            limit.Written++;
            heldBack = limit.HeldBack;
            limit.HeldBack = 0;
            return true;
        }
    }

    private static string FirstLine(string? error)
    {
        if (string.IsNullOrEmpty(error)) return "(no error text)";
        var end = error.IndexOfAny(['\r', '\n']);
        return end < 0 ? error : error[..end];
    }

    [LoggerMessage(2004, LogLevel.Warning, "Job {JobId} ({Kind}, queue {Queue}) failed attempt {Attempt} of {MaxAttempts} ({HeldBack} similar line(s) held back before this one)")]
    private static partial void AttemptFailed(ILogger logger, Exception exception, long jobId, string kind, string queue, int attempt, int maxAttempts, int heldBack);

    [LoggerMessage(2026, LogLevel.Error, "Job {JobId} ({Kind}, queue {Queue}) is dead after attempt {Attempt}: {Error} ({HeldBack} similar line(s) held back before this one); redrive it once the cause is fixed")]
    private static partial void JobDead(ILogger logger, long jobId, string kind, string queue, int attempt, string error, int heldBack);
}
