namespace Scheduling.Internal;

/// <summary>The job kinds this host has handlers for (what the recurring scheduler checks its jobs against).</summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
public sealed class RegisteredHandlerKinds
{
    private readonly HashSet<string> _kinds;

    internal RegisteredHandlerKinds(IEnumerable<string> kinds) => _kinds = kinds.ToHashSet(StringComparer.Ordinal);

    /// <summary>Every kind with a handler, in ordinal order.</summary>
    public IReadOnlyList<string> Kinds => _kinds.Order(StringComparer.Ordinal).ToArray();

    /// <summary>Whether <paramref name="kind"/> has a handler.</summary>
    public bool Contains(string kind) => _kinds.Contains(kind);
}
