using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Scheduling.Stagger;

/// <summary>
/// The stable, versioned offset of a job name (Jenkins "H"-style): identical on every host and
/// every run, unlike <see cref="string.GetHashCode()"/>.
/// </summary>
/// <remarks>Version 1: the first four bytes of SHA-256 over the UTF-8 job name, read big-endian as
/// an unsigned integer, modulo 60. Changing this moves every hashed job; a new rule gets a new version.</remarks>
public static class StaggerHash
{
    /// <summary>The rule's version.</summary>
    public const int Version = 1;

    /// <summary>The offset (0-59) for a job name.</summary>
    public static int Offset(string jobName)
    {
        ArgumentNullException.ThrowIfNull(jobName);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(jobName), hash);
        return (int)(BinaryPrimitives.ReadUInt32BigEndian(hash) % 60);
    }
}
