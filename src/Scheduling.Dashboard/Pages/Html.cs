using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;

namespace Scheduling.Dashboard.Pages;

/// <summary>
/// Builds a page as a string. Everything that comes from a job, a queue, a host or the request goes
/// through <see cref="Text(string?)"/> or an attribute helper and is HTML-encoded; <see cref="Raw"/> takes only
/// markup written in this assembly.
/// </summary>
internal sealed class Html
{
    private readonly StringBuilder _out = new();
    private static readonly HtmlEncoder Encoder = HtmlEncoder.Default;

    public Html Raw(string markup)
    {
        _out.Append(markup);
        return this;
    }

    public Html Text(string? value)
    {
        if (value is not null) _out.Append(Encoder.Encode(value));
        return this;
    }

    public Html Text(long value) => Raw(value.ToString(CultureInfo.InvariantCulture));

    /// <summary><c>&lt;tag attr="value"...&gt;text&lt;/tag&gt;</c> with the text and attribute values encoded.</summary>
    public Html Element(string tag, string? text, params (string Name, string? Value)[] attributes)
    {
        Open(tag, attributes);
        Text(text);
        return Raw($"</{tag}>");
    }

    public Html Open(string tag, params (string Name, string? Value)[] attributes)
    {
        _out.Append('<').Append(tag);
        foreach (var (name, value) in attributes)
        {
            if (value is null) continue;
            _out.Append(' ').Append(name).Append("=\"").Append(Encoder.Encode(value)).Append('"');
        }

        _out.Append('>');
        return this;
    }

    public Html Link(string href, string? text, string? cssClass = null) => Element("a", text, ("href", href), ("class", cssClass));

    public Html Time(DateTimeOffset? at) => at is { } t
        ? Element("time", t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC", ("datetime", t.ToString("O", CultureInfo.InvariantCulture)))
        : Raw("-");

    /// <summary>Text cut to <paramref name="limit"/> characters, with a note of how much was left out.</summary>
    public Html Capped(string value, int limit)
    {
        if (value.Length <= limit) return Text(value);
        Text(value[..limit]);
        return Element("span", $"\n… {value.Length - limit:N0} more characters not shown", ("class", "cut"));
    }

    public override string ToString() => _out.ToString();

    /// <summary>A query string from the values that are set, each escaped.</summary>
    public static string Query(params (string Name, string? Value)[] values)
    {
        var set = values.Where(v => !string.IsNullOrEmpty(v.Value)).Select(v => $"{Uri.EscapeDataString(v.Name)}={Uri.EscapeDataString(v.Value!)}").ToArray();
        return set.Length == 0 ? "" : "?" + string.Join("&", set);
    }
}
