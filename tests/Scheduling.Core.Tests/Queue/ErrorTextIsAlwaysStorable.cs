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

/// <summary>What a job stores with it is bounded whatever the caller sends or configures.</summary>
public sealed class StoredValuesAreBounded
{
    [Fact]
    public void A_long_tracestate_is_cut_at_a_list_member_within_the_w3c_length()
    {
        var members = Enumerable.Range(0, 60).Select(i => $"vendor{i}=value{i:D4}").ToArray();
        var kept = JobValidation.CapTraceState(string.Join(",", members))!;

        Assert.True(kept.Length <= JobValidation.MaxTraceStateLength, $"{kept.Length} characters");
        Assert.StartsWith("vendor0=value0000,vendor1=", kept, StringComparison.Ordinal);
        Assert.All(kept.Split(','), m => Assert.Contains(m, members));
        Assert.Equal("a=1,b=2", JobValidation.CapTraceState("a=1,b=2"));
        Assert.Null(JobValidation.CapTraceState(new string('x', 600)));
    }

    [Fact]
    public void Error_settings_that_could_not_be_stored_together_are_refused_by_name()
    {
        var error = Assert.Throws<ArgumentException>(() => JobValidation.ValidateOptions(new JobQueueOptions { MaxErrorsKept = 1000, MaxErrorLength = 1_000_000 }, "rules"));

        Assert.Equal("rules", error.ParamName);
        Assert.Contains("MaxErrorsKept x MaxErrorLength must be at most 10,000,000 characters", error.Message, StringComparison.Ordinal);
    }
}
