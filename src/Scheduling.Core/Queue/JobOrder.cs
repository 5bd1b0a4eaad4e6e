namespace Scheduling;

/// <summary>
/// The order in which due jobs of a queue are acquired: larger priority first, then earlier
/// run-at, then smaller id. The PostgreSQL fetch index and ORDER BY follow the same rule.
/// </summary>
internal static class JobOrder
{
    public static int Compare(int priorityA, DateTimeOffset runAtA, long idA, int priorityB, DateTimeOffset runAtB, long idB)
    {
        var byPriority = priorityB.CompareTo(priorityA);
        if (byPriority != 0) return byPriority;
        var byRunAt = runAtA.CompareTo(runAtB);
        return byRunAt != 0 ? byRunAt : idA.CompareTo(idB);
    }

    public static readonly Comparison<AcquiredJob> Acquired =
        (a, b) => Compare(a.Priority, a.RunAt, a.Id, b.Priority, b.RunAt, b.Id);
}
