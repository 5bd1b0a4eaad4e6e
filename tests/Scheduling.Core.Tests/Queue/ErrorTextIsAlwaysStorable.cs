using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Scheduling.Core.Tests.Queue;

/// <summary>
/// Invariant: whatever a handler throws, the error text kept is storable — valid UTF-16 (a strict
/// UTF-8 encoder accepts it, as Npgsql's does), no NUL, within the length limit — and a short
/// valid text is kept as it was.
/// </summary>
public sealed class ErrorTextIsAlwaysStorable
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // Text made of the pieces that break naive trimming: pairs, lone halves, NULs, plain letters.
    private static readonly Gen<string> Texts =
        Gen.Elements("a", "é", "💥", "\uD83D", "\uDCA5", "\0", " ", "x")
            .ListOf().Select(parts => string.Concat(parts));

    [Fact]
    public void Any_error_text_is_trimmed_to_valid_storable_text()
    {
        var inputs = from text in Texts from limit in Gen.Choose(16, 40) select (text, limit);

        Prop.ForAll(Arb.From(inputs), x =>
        {
            var options = new JobQueueOptions { MaxErrorLength = x.limit };
            var kept = JobValidation.TrimError(x.text, options);

            Strict.GetBytes(kept); // throws on a lone surrogate
            Assert.DoesNotContain('\0', kept);
            if (x.text.Length == 0) Assert.Equal(JobTransitions.NoErrorMessage, kept);
            else Assert.True(kept.Length <= x.limit, $"{kept.Length} > {x.limit}");
            var valid = !x.text.Contains('\0') && IsValidUtf16(x.text);
            if (valid && x.text.Length is > 0 && x.text.Length <= x.limit) Assert.Equal(x.text, kept);
            if (x.text.Length > x.limit) Assert.EndsWith("…", kept, StringComparison.Ordinal);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(3_000));
    }

    [Fact]
    public void An_emoji_at_the_cut_is_dropped_whole_and_a_lone_half_becomes_a_replacement_character()
    {
        var options = new JobQueueOptions { MaxErrorLength = 16 };

        Assert.Equal("aaaaaaaaaaaaaa…", JobValidation.TrimError(new string('a', 14) + "💥 and more", options));
        Assert.Equal("bad \uFFFD input", JobValidation.TrimError("bad \uD83D input", options));
        Assert.Equal(JobTransitions.NoErrorMessage, JobValidation.TrimError("", options));
    }

    private static bool IsValidUtf16(string text)
    {
        try { Strict.GetBytes(text); return true; }
        catch (EncoderFallbackException) { return false; }
    }
}
