using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Kaiwa;
#if KAIWA_CECIL
using Mono.Cecil;
#endif

namespace Kaiwa.Tests
{
    internal static class ApiTests
    {
        // Unity and .NET 6 compile the SDK against .NET Standard 2.1, Mono
        // against its own class library: every type of the class library
        // the SDK uses must be one that .NET Standard 2.0 (a subset of 2.1)
        // has, which is what netstandard.dll's forwarders list.
        [Test]
        static void UsesOnlyNetStandardTypes()
        {
#if KAIWA_CECIL
            string facade = Path.Combine(Path.GetDirectoryName(typeof(object).Assembly.Location), "Facades", "netstandard.dll");
            HashSet<string> standard;
            using (var ns = ModuleDefinition.ReadModule(facade))
            {
                standard = new HashSet<string>(ns.ExportedTypes.Select(t => t.FullName));
            }
            Assert.True(standard.Count > 2000, "netstandard.dll forwards " + standard.Count + " types");
            using (var m = ModuleDefinition.ReadModule(typeof(KaiwaClient).Assembly.Location))
            {
                var outside = m.GetTypeReferences()
                    .Where(t => !(t.Scope is ModuleDefinition))
                    .Select(t => t.FullName)
                    .Where(n => !standard.Contains(n))
                    .OrderBy(n => n, StringComparer.Ordinal)
                    .ToList();
                Assert.Seq(new string[0], outside, "types Kaiwa.dll uses that .NET Standard lacks");
                Assert.Seq(new[] { "System", "System.Core", "mscorlib" }, m.AssemblyReferences.Select(r => r.Name).OrderBy(n => n, StringComparer.Ordinal), "the assemblies Kaiwa.dll references");
            }
#else
            throw new SkipException("Mono.Cecil was not found when building (Debian: libmono-cecil-private-cil, a dependency of mono-devel)");
#endif
        }
    }
}
