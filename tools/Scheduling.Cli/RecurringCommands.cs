using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Scheduling.Stagger;

namespace Scheduling.Cli;

/// <summary>'scheduling recurring': the recurring jobs stored with the queue, changed for every host without a deploy.</summary>
internal static class RecurringCommands
{
    public static Command Recurring()
    {
        var list = DatabaseCommand.Create("recurring", "The stored recurring jobs (each host adds its code-registered ones); 'recurring set|pause|resume|remove NAME'.", async (db, _, cancellationToken) =>
        {
            var jobs = await Manager(db).ListAsync(cancellationToken);
            if (db.Json)
            {
                await db.Output.WriteLineAsync(JsonSerializer.Serialize(new { jobs }, Cli.Json));
                return Cli.Ok;
            }

            await db.Output.WriteLineAsync($"{"name",-24} {"cron",-16} {"zone",-16} {"kind",-20} {"queue",-12} {"state",-7} updated (UTC)");
            foreach (var j in jobs)
                await db.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{j.Name,-24} {j.Cron,-16} {j.TimeZone,-16} {j.Kind,-20} {j.Queue,-12} {(j.Paused ? "paused" : "active"),-7} {j.UpdatedAt?.UtcDateTime:yyyy-MM-dd HH:mm:ss}"));
            return Cli.Ok;
        });
        list.Add(Set());
        list.Add(OnOne("pause", "Pause a stored recurring job on every host (exit 5 when there is none of that name).", (m, name, ct) => m.PauseAsync(name, ct), "paused"));
        list.Add(OnOne("resume", "Resume a paused stored recurring job from its next tick (exit 5 when there is none of that name).", (m, name, ct) => m.ResumeAsync(name, ct), "resumed"));
        list.Add(OnOne("remove", "Remove a stored recurring job; ticks already enqueued stay (exit 5 when there is none of that name).", (m, name, ct) => m.RemoveAsync(name, ct), "removed"));
        return list;
    }

    private static RecurringJobManager Manager(DatabaseInvocation db) => new(db.Queue);

    private static Command Set()
    {
        var name = new Argument<string>("name") { Description = "the job's unique name" };
        var cron = new Option<string>("--cron") { Description = "5 fields, or 6 read seconds first", Required = true, HelpName = "expression" };
        var kind = new Option<string>("--kind") { Description = "the handler kind each tick enqueues", Required = true, HelpName = "kind" };
        var payload = new Option<string?>("--payload") { Description = "each tick's payload, as JSON", HelpName = "json" };
        var queue = new Option<string>("--queue") { Description = "the queue its ticks go to", DefaultValueFactory = _ => JobRequest.DefaultQueue, HelpName = "name" };
        var zone = new Option<string>("--time-zone") { Description = "the zone the expression is read in (IANA id)", DefaultValueFactory = _ => "UTC", HelpName = "zone" };
        var duration = Cli.BoundedInt("--duration-seconds", "how long one run usually takes, for the stagger planner", 10, 1, 86_400);
        var misfire = Cli.EnumOption<MisfirePolicy>("--misfire", "what happens to ticks missed while no host ran (default fire-once)");
        var paused = new Option<bool>("--paused") { Description = "store it paused" };
        return DatabaseCommand.Create("set", "Add a stored recurring job, or replace the one of that name; every host picks it up at once and re-plans the stagger offsets.", async (db, parse, cancellationToken) =>
        {
            var job = new RecurringJobDefinition(parse.GetValue(name)!, parse.GetValue(cron)!, parse.GetValue(kind)!)
            {
                PayloadJson = parse.GetValue(payload), Queue = parse.GetValue(queue)!, TimeZone = parse.GetValue(zone)!,
                ExpectedDuration = TimeSpan.FromSeconds(parse.GetValue(duration)), Misfire = parse.GetValue(misfire) ?? MisfirePolicy.FireOnce, Paused = parse.GetValue(paused),
            };
            var added = await Manager(db).AddOrUpdateAsync(job, cancellationToken);
            if (db.Json) await db.Output.WriteLineAsync(JsonSerializer.Serialize(new { job.Name, added }, Cli.Json));
            else await db.Output.WriteLineAsync($"recurring job '{job.Name}' {(added ? "added" : "updated")}");
            return Cli.Ok;
        }, name, cron, kind, payload, queue, zone, duration, misfire, paused);
    }

    private static Command OnOne(string verb, string description, Func<RecurringJobManager, string, CancellationToken, ValueTask<bool>> change, string done)
    {
        var name = new Argument<string>("name") { Description = "the stored job's name" };
        return DatabaseCommand.Create(verb, description, async (db, parse, cancellationToken) =>
        {
            var job = parse.GetValue(name)!;
            var changed = await change(Manager(db), job, cancellationToken);
            if (db.Json) await db.Output.WriteLineAsync(JsonSerializer.Serialize(new { name = job, changed }, Cli.Json));
            else await db.Output.WriteLineAsync(changed ? $"recurring job '{job}' {done}" : $"no stored recurring job '{job}'");
            return changed ? Cli.Ok : Cli.NothingChanged;
        }, name);
    }
}
