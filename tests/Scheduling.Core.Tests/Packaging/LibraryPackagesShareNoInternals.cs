using System.Reflection;
using System.Runtime.CompilerServices;
using Xunit;

namespace Scheduling.Core.Tests.Packaging;

/// <summary>
/// Invariant: no shipped library opens its internals to another shipped library. Packages installed
/// at different versions would otherwise fail at run time (MissingMethodException); what the sister
/// packages share is public, experimental, in Scheduling.Internal, so a mismatch fails at compile time.
/// </summary>
public sealed class LibraryPackagesShareNoInternals
{
    private static readonly string[] Libraries = ["Scheduling.Core", "Scheduling.Postgres", "Scheduling.Stagger", "Scheduling.Testing", "Scheduling.Dashboard"];

    [Fact]
    public void Core_names_no_library_as_a_friend()
    {
        var friends = typeof(IJobQueue).Assembly.GetCustomAttributes<InternalsVisibleToAttribute>().Select(a => a.AssemblyName).ToArray();

        Assert.NotEmpty(friends); // its own tests are friends, so the check reads real attributes
        Assert.DoesNotContain(friends, f => Libraries.Contains(f.Split(',')[0]));
    }

    [Fact]
    public void What_core_shares_with_its_sister_packages_is_public_and_marked_experimental()
    {
        var shared = typeof(IJobQueue).Assembly.GetExportedTypes().Where(t => t.Namespace == "Scheduling.Internal" && !t.IsNested).ToArray();

        Assert.Contains(shared, t => t.Name == "JobValidation");
        Assert.All(shared, t => Assert.NotNull(t.GetCustomAttribute<System.Diagnostics.CodeAnalysis.ExperimentalAttribute>()));
        Assert.All(shared, t => Assert.Equal("SCHEDULING0001", t.GetCustomAttribute<System.Diagnostics.CodeAnalysis.ExperimentalAttribute>()!.DiagnosticId));
    }
}
