using System.CommandLine;
using Npgsql;
using Scheduling.Postgres;

namespace Scheduling.Cli;

/// <summary>What a database command's action is given: the open source, the schema's operations and where to write.</summary>
internal sealed record DatabaseInvocation(string Command, NpgsqlDataSource DataSource, PostgresOperations Operations, bool Json, TextWriter Output, TextWriter Error)
{
    /// <summary>The schema the command works on.</summary>
    public string Schema => Operations.Schema;

    /// <summary>The schema's queue, for the commands that act through its API (it never migrates: the CLI's migrate does).</summary>
    public PostgresJobQueue Queue => _queue ??= new PostgresJobQueue(DataSource, new PostgresQueueOptions { Schema = Schema, ApplyMigrations = false });

    private PostgresJobQueue? _queue;
}

/// <summary>The options every database command takes, and the one place their failures become messages and exit codes.</summary>
internal static class DatabaseCommand
{
    private const string ConnectionVariable = "SCHEDULING_CONNECTION";

    /// <summary>
    /// A command with <c>--connection</c>, <c>--schema</c>, <c>--json</c> and <c>--verbose</c> that runs
    /// <paramref name="run"/> against the database, once the schema is migrated.
    /// </summary>
    public static Command Create(string name, string description, Func<DatabaseInvocation, ParseResult, CancellationToken, Task<int>> run, params Symbol[] symbols) =>
        Create(name, description, anySchema: false, run, symbols);

    /// <summary>As the overload without <paramref name="anySchema"/>; true runs on any schema, migrated or not (migrate, status).</summary>
    public static Command Create(string name, string description, bool anySchema, Func<DatabaseInvocation, ParseResult, CancellationToken, Task<int>> run, params Symbol[] symbols)
    {
        var connection = new Option<string?>("--connection") { Description = $"the database, as an Npgsql connection string (default: ${ConnectionVariable})", HelpName = "connstring" };
        var schema = new Option<string>("--schema") { Description = "the jobs schema", DefaultValueFactory = _ => "scheduling", HelpName = "name" };
        var json = new Option<bool>("--json") { Description = "print JSON instead of a table" };
        var verbose = new Option<bool>("--verbose") { Description = "print the whole exception on a database error" };
        var command = new Command(name, description);
        foreach (var symbol in symbols)
        {
            if (symbol is Option option) command.Add(option);
            else if (symbol is Argument argument) command.Add(argument);
        }

        command.Add(connection);
        command.Add(schema);
        command.Add(json);
        command.Add(verbose);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var path = Cli.CommandPath(parse.CommandResult);
            var connectionString = parse.GetValue(connection) ?? Environment.GetEnvironmentVariable(ConnectionVariable);
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                await error.WriteLineAsync($"{path}: a database is required: --connection CONNSTRING or {ConnectionVariable}.");
                return Cli.Usage;
            }

            var schemaName = parse.GetValue(schema)!;
            try
            {
                await using var dataSource = NpgsqlDataSource.Create(connectionString);
                var operations = new PostgresOperations(dataSource, schemaName);
                if (!anySchema && (await operations.AppliedMigrationsAsync(cancellationToken)).DefaultIfEmpty().Max() is var version && version < PostgresMigrator.LatestVersion)
                {
                    await error.WriteLineAsync($"{path}: schema '{schemaName}' is {(version == 0 ? "missing or not migrated" : $"at migration {version} of {PostgresMigrator.LatestVersion}")}; run 'scheduling migrate --schema {schemaName}' first.");
                    return Cli.BadInput;
                }

                return await run(new DatabaseInvocation(path, dataSource, operations, parse.GetValue(json), output, error), parse, cancellationToken);
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
            {
                await error.WriteLineAsync($"{path}: {ex.Message}");
                return Cli.Usage;
            }
            catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName or PostgresErrorCodes.UndefinedFunction)
            {
                await error.WriteLineAsync($"{path}: schema '{schemaName}' is missing or not migrated ({ex.MessageText}); run 'scheduling migrate --schema {schemaName}' first.");
                return Cli.BadInput;
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                await error.WriteLineAsync($"{path}: cannot use the database: {(ex is PostgresException pg ? pg.MessageText : ex.Message)}" + (parse.GetValue(verbose) ? "\n" + ex : ""));
                return Cli.DatabaseError;
            }
        });
        return command;
    }
}
