using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace Scheduling.Internal;

/// <summary>
/// A <see cref="TimeSpan"/> setting's bounds, inclusive, for the generated options validators:
/// <c>[TimeSpanRange(…)]</c> with none of its trimming cost (it converts its bounds through a
/// <c>TypeConverter</c> found by reflection); the message reads the same.
/// </summary>
[System.Diagnostics.CodeAnalysis.Experimental(ExperimentalApi.Internals)]
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter, AllowMultiple = false)]
public sealed class TimeSpanRangeAttribute : ValidationAttribute
{
    /// <summary>The bounds in the invariant <c>[d.]hh:mm:ss[.fffffff]</c> form.</summary>
    /// <exception cref="FormatException">A bound is not a time span.</exception>
    public TimeSpanRangeAttribute(string minimum, string maximum)
        : base("The field {0} must be between {1} and {2}.")
    {
        Minimum = TimeSpan.Parse(minimum, CultureInfo.InvariantCulture);
        Maximum = TimeSpan.Parse(maximum, CultureInfo.InvariantCulture);
    }

    /// <summary>The least value allowed.</summary>
    public TimeSpan Minimum { get; }

    /// <summary>The greatest value allowed.</summary>
    public TimeSpan Maximum { get; }

    /// <inheritdoc />
    public override bool IsValid(object? value) => value is not TimeSpan span || (span >= Minimum && span <= Maximum); // null: [Required]'s business, as with [Range]

    /// <inheritdoc />
    public override string FormatErrorMessage(string name) =>
        string.Format(CultureInfo.CurrentCulture, ErrorMessageString, name, Minimum, Maximum);
}
