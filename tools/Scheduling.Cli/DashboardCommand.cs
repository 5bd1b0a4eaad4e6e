using System.CommandLine;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Scheduling.Dashboard;

namespace Scheduling.Cli;

/// <summary><c>scheduling dashboard</c>: the dashboard for one schema, served on a loopback address until stopped.</summary>
internal static class DashboardCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls") { Description = "where to listen, ';'-separated (loopback only: the CLI's dashboard has no sign-in)", DefaultValueFactory = _ => "http://127.0.0.1:5080", HelpName = "urls" };
        var readOnly = new Option<bool>("--read-only") { Description = "show everything, change nothing" };
        var traceLink = new Option<string?>("--trace-link") { Description = "a link to your tracing UI with {traceId}, e.g. https://jaeger.example/trace/{traceId}", HelpName = "template" };
        return DatabaseCommand.Create("dashboard", "Serve the dashboard for the schema on a loopback address until Ctrl+C (apps map it themselves: app.MapSchedulingDashboard).", async (db, parse, cancellationToken) =>
        {
            var addresses = parse.GetValue(urls)!.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var address in addresses)
            {
                if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                {
                    await db.Error.WriteLineAsync($"{db.Command}: --urls: '{address}' is not an http(s) address such as http://127.0.0.1:5080.");
                    return Cli.Usage;
                }

                if (!(uri.IsLoopback || (IPAddress.TryParse(uri.Host, out var ip) && IPAddress.IsLoopback(ip))))
                {
                    await db.Error.WriteLineAsync($"{db.Command}: --urls: '{address}' is not a loopback address. The CLI's dashboard has no sign-in, so it only listens on this machine; " +
                        "to serve others, map it in an app with an authorization policy (app.MapSchedulingDashboard, see docs/dashboard.md).");
                    return Cli.Usage;
                }
            }

            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls(addresses);
            builder.Logging.ClearProviders().AddSimpleConsole().SetMinimumLevel(LogLevel.Warning).AddFilter("Scheduling.Dashboard", LogLevel.Information);
            builder.Services.AddSingleton<IJobQueue>(db.Queue);
            builder.Services.AddSchedulingDashboard(o =>
            {
                o.AllowAnonymous = true; // loopback only, checked above
                o.ReadOnly = parse.GetValue(readOnly);
                o.TraceLinkTemplate = parse.GetValue(traceLink);
            });
            await using var app = builder.Build();
            app.MapSchedulingDashboard("/");
            try
            {
                await app.StartAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is IOException or Microsoft.Extensions.Options.OptionsValidationException)
            {
                await db.Error.WriteLineAsync($"{db.Command}: cannot serve the dashboard: {ex.Message}");
                return Cli.Usage;
            }

            await db.Output.WriteLineAsync($"Dashboard for schema '{db.Schema}' on {string.Join(", ", app.Urls)} (Ctrl+C stops it).");
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C
            }

            await app.StopAsync(CancellationToken.None);
            return Cli.Ok;
        }, urls, readOnly, traceLink);
    }
}
