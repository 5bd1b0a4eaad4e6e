using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Scheduling;

/// <summary>
/// Hashes a job's final command: the key of its run history for resource estimation. Only the
/// command is ever hashed, never a description or any other text standing in for it.
/// </summary>
public interface ICommandHasher
{
    /// <summary>The hash of <paramref name="command"/>, or null when there is no command (null or empty).</summary>
    string? Hash(string? command);
}

/// <summary>
/// The default hasher: lowercase hex MD5 of the command's UTF-8 bytes, identical to PostgreSQL's
/// <c>md5(command)</c> so the database can audit every stored hash.
/// </summary>
public sealed class Md5CommandHasher : ICommandHasher
{
    /// <summary>The shared instance.</summary>
    public static Md5CommandHasher Instance { get; } = new();

    /// <inheritdoc />
    public string? Hash(string? command)
    {
        if (string.IsNullOrEmpty(command)) return null;
#pragma warning disable CA5351 // MD5 is a fingerprint here (matching PostgreSQL's md5()), not a security boundary.
        return Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(command)));
#pragma warning restore CA5351
    }
}

/// <summary>
/// Hashes a command with its volatile parts masked (ISO dates and times, UUIDs, numbers of four or
/// more digits), so runs of "report --date 2026-01-05" and "report --date 2026-01-06" share a key.
/// Opt-in, and used only as the cold-start fallback key, never as the primary one.
/// </summary>
public sealed partial class NormalizingCommandHasher : ICommandHasher
{
    private readonly ICommandHasher _inner;

    /// <summary>Masks, then hashes with <paramref name="inner"/> (MD5 when null).</summary>
    public NormalizingCommandHasher(ICommandHasher? inner = null) => _inner = inner ?? Md5CommandHasher.Instance;

    /// <inheritdoc />
    public string? Hash(string? command) => string.IsNullOrEmpty(command) ? null : _inner.Hash(Normalize(command));

    /// <summary>The command with volatile parts replaced by placeholders.</summary>
    public static string Normalize(string command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var masked = Uuid().Replace(command, "<uuid>");
        masked = IsoDateTime().Replace(masked, "<date>");
        return LongNumber().Replace(masked, "<n>");
    }

    [GeneratedRegex(@"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", RegexOptions.CultureInvariant)]
    private static partial Regex Uuid();

    [GeneratedRegex(@"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b", RegexOptions.CultureInvariant)]
    private static partial Regex IsoDateTime();

    [GeneratedRegex(@"\b\d{4,}\b", RegexOptions.CultureInvariant)]
    private static partial Regex LongNumber();
}
