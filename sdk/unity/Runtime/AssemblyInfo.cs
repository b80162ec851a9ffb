using System.Runtime.CompilerServices;

// The SDK's own tests and conformance runner (sdk/unity/Tests~) read its
// JSON reader and writer.
[assembly: InternalsVisibleTo("Kaiwa.Tests")]
[assembly: InternalsVisibleTo("KaiwaConformance")]
