using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;

namespace Scheduling.Dashboard.Tests;

/// <summary>
/// A real ASP.NET Core app on a loopback port (Kestrel), with the in-memory job store (or the given one)
/// and the dashboard at /scheduling; its client keeps cookies and does not follow redirects.
/// </summary>
internal sealed partial class DashboardApp : IAsyncDisposable
{
    private readonly WebApplication _app;

    private DashboardApp(WebApplication app, FakeLogCollector logs)
    {
        _app = app;
        Logs = logs;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseAddress = new Uri(address);
        Client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = BaseAddress };
    }

    public Uri BaseAddress { get; }

    public HttpClient Client { get; }

    public FakeLogCollector Logs { get; }

    public IJobQueue Queue => _app.Services.GetRequiredService<IJobQueue>();

    public IServiceProvider Services => _app.Services;

    public static async Task<DashboardApp> StartAsync(
        string environment = "Development",
        Action<SchedulingDashboardOptions>? dashboard = null,
        Action<IServiceCollection>? services = null,
        bool withPolicy = false,
        Action<SchedulingBuilder>? scheduling = null,
        bool runWorkers = false)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = environment });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var logs = new FakeLogCollector();
        builder.Logging.ClearProviders().AddProvider(new FakeLoggerProvider(logs));
        services?.Invoke(builder.Services);
        builder.Services.AddScheduling(s =>
        {
            s.Configure(o => o.RunWorkers = runWorkers);
            scheduling?.Invoke(s);
        });
        builder.Services.AddSchedulingDashboard(dashboard);
        if (withPolicy)
        {
            // A test scheme: the "X-Test-User" header names the user, "X-Test-Role" their role.
            builder.Services.AddAuthentication("test").AddScheme<AuthenticationSchemeOptions, HeaderAuthentication>("test", null);
            builder.Services.AddAuthorization(o => o.AddPolicy("ops", p => p.RequireRole("ops")));
        }

        var app = builder.Build();
        if (withPolicy)
        {
            app.UseAuthentication();
            app.UseAuthorization();
        }

        app.MapSchedulingDashboard("/scheduling");
        await app.StartAsync();
        return new DashboardApp(app, logs);
    }

    /// <summary>GETs a page and returns its status and body.</summary>
    public async Task<(HttpStatusCode Status, string Body)> GetAsync(string path, Action<HttpRequestMessage>? request = null)
    {
        using var message = new HttpRequestMessage(HttpMethod.Get, path);
        request?.Invoke(message);
        using var response = await Client.SendAsync(message);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Posts a form; with <paramref name="tokenFrom"/>, first reads that page's anti-forgery field, as a browser would.</summary>
    public async Task<HttpResponseMessage> PostAsync(string path, IEnumerable<KeyValuePair<string, string>> fields, string? tokenFrom = null, Action<HttpRequestMessage>? request = null)
    {
        var values = fields.ToList();
        if (tokenFrom is not null)
        {
            var (_, page) = await GetAsync(tokenFrom, request);
            var token = AntiforgeryField().Match(page);
            if (!token.Success) throw new InvalidOperationException($"{tokenFrom} has no anti-forgery field.");
            values.Add(new(token.Groups["name"].Value, WebUtility.HtmlDecode(token.Groups["value"].Value)));
        }

        using var message = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(values) };
        request?.Invoke(message);
        return await Client.SendAsync(message);
    }

    [GeneratedRegex("<input type=\"hidden\" name=\"(?<name>__RequestVerificationToken[^\"]*)\" value=\"(?<value>[^\"]+)\">")]
    private static partial Regex AntiforgeryField();

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class HeaderAuthentication(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (Request.Headers["X-Test-User"].FirstOrDefault() is not { Length: > 0 } user) return Task.FromResult(AuthenticateResult.NoResult());
            var claims = new List<Claim> { new(ClaimTypes.Name, user) };
            if (Request.Headers["X-Test-Role"].FirstOrDefault() is { Length: > 0 } role) claims.Add(new Claim(ClaimTypes.Role, role));
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, "test")), "test")));
        }
    }
}
