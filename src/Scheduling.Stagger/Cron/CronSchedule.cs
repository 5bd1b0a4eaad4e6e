using System.Globalization;
using Cronos;

namespace Scheduling.Stagger;

/// <summary>
/// A validated cron expression in one of the two accepted shapes: 5 fields (minute hour day month
/// weekday) or 6 fields read seconds first (second minute hour day month weekday), as Cronos and
/// Quartz read them. Parsing is Cronos's; this type only normalises and explains.
/// </summary>
public sealed class CronSchedule
{
    private static readonly Dictionary<string, string> Macros = new(StringComparer.OrdinalIgnoreCase)
    {
        ["@yearly"] = "0 0 1 1 *", ["@annually"] = "0 0 1 1 *", ["@monthly"] = "0 0 1 * *", ["@weekly"] = "0 0 * * 0",
        ["@daily"] = "0 0 * * *", ["@midnight"] = "0 0 * * *", ["@hourly"] = "0 * * * *", ["@every_minute"] = "* * * * *",
    };

    private CronSchedule(string original, string fiveField, string? secondsField)
    {
        Original = original;
        MinuteExpression = fiveField;
        SecondsField = secondsField;
    }

    /// <summary>The expression as given.</summary>
    public string Original { get; }

    /// <summary>The minute-level part (5 fields; macros expanded).</summary>
    public string MinuteExpression { get; }

    /// <summary>The seconds field when the expression had one; null for 5-field input.</summary>
    public string? SecondsField { get; }

    /// <summary>True when the expression already fixes its seconds (6-field input).</summary>
    public bool HasSeconds => SecondsField is not null;

    /// <summary>The seconds of a 6-field expression when it is one plain number, else null.</summary>
    public int? FixedSecond => int.TryParse(SecondsField, NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : null;

    /// <summary>The 6-field expression with the given seconds offset (a 6-field input keeps its own seconds).</summary>
    public string WithOffset(int offsetSeconds) => HasSeconds ? $"{SecondsField} {MinuteExpression}" : $"{offsetSeconds} {MinuteExpression}";

    /// <summary>Parses and validates an expression.</summary>
    /// <exception cref="ArgumentException">Not a valid 5- or 6-field expression; the message says why.</exception>
    public static CronSchedule Parse(string? expression, string parameterName = "cronExpression")
    {
        if (string.IsNullOrWhiteSpace(expression)) throw new ArgumentException("A cron expression is required.", parameterName);
        var trimmed = expression.Trim();
        if (Macros.TryGetValue(trimmed, out var expanded)) return new CronSchedule(trimmed, expanded, null);
        var fields = trimmed.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        switch (fields.Length)
        {
            case 5:
                Validate(trimmed, CronFormat.Standard, parameterName);
                return new CronSchedule(trimmed, string.Join(' ', fields), null);
            case 6:
                if (fields[5].Split(',', '-', '/').Any(part => part.Length == 4 && part.All(char.IsAsciiDigit)))
                    throw new ArgumentException($"'{trimmed}' looks like minute-first cron with a year field; 6-field expressions are read seconds first: second minute hour day month weekday.", parameterName);
                Validate(trimmed, CronFormat.IncludeSeconds, parameterName);
                return new CronSchedule(trimmed, string.Join(' ', fields[1..]), fields[0]);
            default:
                throw new ArgumentException($"'{trimmed}' has {fields.Length} fields; use 5 (minute hour day month weekday) or 6 read seconds first (second minute hour day month weekday).", parameterName);
        }
    }

    /// <summary>Parses, returning null and the reason instead of throwing.</summary>
    public static CronSchedule? TryParse(string? expression, out string? error)
    {
        try
        {
            error = null;
            return Parse(expression);
        }
        catch (ArgumentException ex)
        {
            error = ex.Message;
            return null;
        }
    }

    /// <summary>The Cronos expression for the effective 6-field form.</summary>
    internal static CronExpression Compile(string sixField) => CronExpression.Parse(sixField, CronFormat.IncludeSeconds);

    private static void Validate(string expression, CronFormat format, string parameterName)
    {
        try
        {
            CronExpression.Parse(expression, format);
        }
        catch (CronFormatException ex)
        {
            throw new ArgumentException($"'{expression}' is not a valid cron expression: {ex.Message}", parameterName, ex);
        }
    }
}
