using System.Security.Cryptography;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Scheduling.Core.Tests.Ara;

/// <summary>Invariants of command hashing: the final command, and only the command, decides the key.</summary>
public sealed class CommandHashingProperties
{
    private static readonly Config Runs = Config.QuickThrowOnFailure.WithMaxTest(300);

    [Fact]
    public void The_hash_is_lowercase_hex_md5_of_the_utf8_command_and_deterministic()
    {
        Prop.ForAll(Arb.From(ArbMap.Default.GeneratorFor<NonEmptyString>()), command =>
        {
            var hash = Md5CommandHasher.Instance.Hash(command.Get);
#pragma warning disable CA5351
            var expected = Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(command.Get)));
#pragma warning restore CA5351
            return hash == expected && hash == Md5CommandHasher.Instance.Hash(command.Get) && hash!.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');
        }).Check(Runs);
    }

    [Fact]
    public void Different_commands_give_different_hashes()
    {
        Prop.ForAll(Arb.From(ArbMap.Default.GeneratorFor<(NonEmptyString, NonEmptyString)>()), pair =>
            pair.Item1.Get == pair.Item2.Get || Md5CommandHasher.Instance.Hash(pair.Item1.Get) != Md5CommandHasher.Instance.Hash(pair.Item2.Get)).Check(Runs);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void No_command_gives_no_hash(string? command)
    {
        Assert.Null(Md5CommandHasher.Instance.Hash(command));
        Assert.Null(new NormalizingCommandHasher().Hash(command));
    }

    [Fact]
    public void The_description_never_influences_the_stored_hash()
    {
        var gen = from command in ArbMap.Default.GeneratorFor<NonEmptyString>()
                  from a in ArbMap.Default.GeneratorFor<string>()
                  from b in ArbMap.Default.GeneratorFor<string>()
                  select (command.Get, a, b);
        Prop.ForAll(Arb.From(gen.Where(t => !t.Get.Contains('\0') && t.a?.Contains('\0') != true && t.b?.Contains('\0') != true && t.Get.Length <= 1000)), t =>
        {
            var queue = new InMemoryJobQueue();
            var first = queue.EnqueueAsync(new JobRequest("k") { Command = t.Get, Description = t.a }).AsTask().GetAwaiter().GetResult();
            var second = queue.EnqueueAsync(new JobRequest("k") { Command = t.Get, Description = t.b }).AsTask().GetAwaiter().GetResult();
            var hashes = new[] { first, second }.Select(r => queue.GetJobAsync(r.JobId).AsTask().GetAwaiter().GetResult()!.CommandHash).ToArray();
            return hashes[0] == hashes[1] && hashes[0] == Md5CommandHasher.Instance.Hash(t.Get);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(100));
    }

    [Fact]
    public async Task A_shared_description_with_different_commands_gives_different_hashes()
    {
        var queue = new InMemoryJobQueue();
        var light = await queue.EnqueueAsync(new JobRequest("k") { Command = "deploy --model small", Description = "Deploy model" });
        var heavy = await queue.EnqueueAsync(new JobRequest("k") { Command = "deploy --model llm-xl", Description = "Deploy model" });
        Assert.NotEqual((await queue.GetJobAsync(light.JobId))!.CommandHash, (await queue.GetJobAsync(heavy.JobId))!.CommandHash);
    }

    [Theory]
    [InlineData("report --date 2026-01-05", "report --date <date>")]
    [InlineData("load --at 2026-01-05T03:00:00Z --id 0b7c2f6e-3a55-4b8e-9f3d-2d1c7e9a1b23", "load --at <date> --id <uuid>")]
    [InlineData("fetch --batch 123456 --retries 3", "fetch --batch <n> --retries 3")]
    public void Normalisation_masks_dates_uuids_and_long_numbers(string command, string normalized)
    {
        Assert.Equal(normalized, NormalizingCommandHasher.Normalize(command));
        Assert.Equal(new NormalizingCommandHasher().Hash(command), new NormalizingCommandHasher().Hash(command.Replace("2026-01-05", "2026-02-17", StringComparison.Ordinal)));
        Assert.NotEqual(Md5CommandHasher.Instance.Hash(command), new NormalizingCommandHasher().Hash(command));
    }
}
