namespace Scheduling.Internal;

/// <summary>
/// The diagnostic id of the <c>Scheduling.Internal</c> namespace: what the library's own packages
/// (Scheduling.Postgres, Scheduling.Stagger) share with Core. Public so that packages of different
/// versions fail at compile time rather than with a MissingMethodException (Npgsql's way); not a
/// stable API, and it may change in any release.
/// </summary>
internal static class ExperimentalApi
{
    public const string Internals = "SCHEDULING0001";
}
