using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using Kaiwa;

// The unit tests' runner: every static method marked [Test] in this
// assembly, in declaration order, each bounded in time. It prints
// "PASS Class.Method (N ms)", "FAIL Class.Method: WHY" or "SKIP Class.Method:
// WHY" per test, and exits
// 1 when any failed. An argument, or KAIWA_CS_TEST_ONLY, is a regular
// expression of the tests to run.
namespace Kaiwa.Tests
{
    [AttributeUsage(AttributeTargets.Method)]
    internal sealed class TestAttribute : Attribute { }

    internal sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    /// <summary>Thrown by a test that cannot run here: it is reported as skipped, with why.</summary>
    internal sealed class SkipException : Exception
    {
        public SkipException(string message) : base(message) { }
    }

    internal static class Program
    {
        static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(30);

        static int Main(string[] args)
        {
            string pattern = args.Length > 0 ? args[0] : Environment.GetEnvironmentVariable("KAIWA_CS_TEST_ONLY") ?? "";
            var only = new Regex(pattern);
            var tests = typeof(Program).Assembly.GetTypes()
                .OrderBy(t => t.MetadataToken)
                .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
                    .Where(m => m.GetCustomAttributes(typeof(TestAttribute), false).Length > 0)
                    .OrderBy(m => m.MetadataToken))
                .Where(m => only.IsMatch(m.DeclaringType.Name + "." + m.Name))
                .ToList();
            int failed = 0, skipped = 0;
            foreach (var m in tests)
            {
                string name = m.DeclaringType.Name + "." + m.Name;
                var sw = Stopwatch.StartNew();
                string err = Run(m);
                if (err != null && err.StartsWith("SKIP ", StringComparison.Ordinal))
                {
                    skipped++;
                    Console.WriteLine("SKIP " + name + ": " + err.Substring(5));
                }
                else if (err == null)
                {
                    Console.WriteLine("PASS " + name + " (" + sw.ElapsedMilliseconds + " ms)");
                }
                else
                {
                    failed++;
                    Console.WriteLine("FAIL " + name + ": " + err.Replace("\n", "\n    "));
                }
                Console.Out.Flush();
            }
            Console.WriteLine("csharp unit tests: " + (tests.Count - failed - skipped) + " passed, " + failed + " failed, " + skipped + " skipped");
            return failed > 0 ? 1 : 0;
        }

        static string Run(MethodInfo m)
        {
            try
            {
                var result = m.Invoke(null, null) as Task;
                if (result != null)
                {
                    var task = Task.Run(() => result);
                    if (!task.Wait(TestTimeout)) return "did not finish within " + TestTimeout.TotalSeconds + " s";
                }
                return null;
            }
            catch (Exception e)
            {
                while ((e is TargetInvocationException || e is AggregateException) && e.InnerException != null) e = e.InnerException;
                if (e is SkipException) return "SKIP " + e.Message;
                return e is AssertionException ? e.Message + "\n" + Where(e) : e.ToString();
            }
        }

        static string Where(Exception e)
        {
            var lines = (e.StackTrace ?? "").Split('\n').Where(l => l.Contains(".cs:") && !l.Contains("Kaiwa.Tests.Assert.")).Take(4);
            return string.Join("\n", lines.Select(l => l.Trim()));
        }
    }

    internal static class Assert
    {
        public static void True(bool cond, string what)
        {
            if (!cond) throw new AssertionException(what);
        }

        public static void Equal<T>(T want, T got, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(want, got)) throw new AssertionException(what + ": got " + Show(got) + ", want " + Show(want));
        }

        public static void Seq<T>(IEnumerable<T> want, IEnumerable<T> got, string what)
        {
            if (!want.SequenceEqual(got)) throw new AssertionException(what + ": got [" + string.Join(", ", got.Select(Show)) + "], want [" + string.Join(", ", want.Select(Show)) + "]");
        }

        static string Show<T>(T v)
        {
            if (v == null) return "null";
            var s = v as string;
            return s != null ? "\"" + s + "\"" : v.ToString();
        }

        public static T Throws<T>(Action f, string what) where T : Exception
        {
            try
            {
                f();
            }
            catch (T e)
            {
                return e;
            }
            catch (Exception e)
            {
                throw new AssertionException(what + ": threw " + e.GetType().Name + " (" + e.Message + "), want " + typeof(T).Name);
            }
            throw new AssertionException(what + ": no exception, want " + typeof(T).Name);
        }

        public static async Task<T> ThrowsAsync<T>(Func<Task> f, string what) where T : Exception
        {
            try
            {
                await f();
            }
            catch (T e)
            {
                return e;
            }
            catch (Exception e)
            {
                throw new AssertionException(what + ": threw " + e.GetType().Name + " (" + e.Message + "), want " + typeof(T).Name);
            }
            throw new AssertionException(what + ": no exception, want " + typeof(T).Name);
        }

        public static async Task<KaiwaException> FailsWith(string code, Func<Task> f, string what)
        {
            var e = await ThrowsAsync<KaiwaException>(f, what);
            Equal(code, e.Code, what + ": the code");
            return e;
        }
    }

    /// <summary>Everything a client raised, recorded as a game would see it.</summary>
    internal sealed class Recorder
    {
        readonly KaiwaClient c;
        public readonly List<string> Log = new List<string>(); // "msg lobby hi", "state Connected", ...
        public readonly List<Message> Messages = new List<Message>();
        public readonly List<KaiwaError> Errors = new List<KaiwaError>();
        public readonly List<ClientState> States = new List<ClientState>();
        public readonly List<MessageGap> Gaps = new List<MessageGap>();
        public readonly List<MessageEdit> Edits = new List<MessageEdit>();
        public readonly List<ReactionChange> Reactions = new List<ReactionChange>();
        public readonly List<int> Threads = new List<int>();

        public Recorder(KaiwaClient c)
        {
            this.c = c;
            c.MessageReceived += m => { Messages.Add(m); Note("msg " + m.Channel + " " + m.Text); };
            c.PresenceChanged += p => Note("presence " + p.Channel + " " + p.User + " " + p.Event);
            c.StateChanged += s => { States.Add(s); Note("state " + s); };
            c.Resumed += (ch, rec) => Note("resumed " + ch + " " + rec);
            c.Gap += g => { Gaps.Add(g); Note("gap " + g.Channel + " " + g.After + " " + g.Before); };
            c.ErrorReceived += e => { Errors.Add(e); Note("error " + e.Code); };
            c.ChannelJoined += ch => Note("joined " + ch);
            c.ChannelLeft += (ch, reason) => Note("left " + ch + " " + reason);
            c.MessageDeleted += (ch, id) => Note("deleted " + ch + " " + id);
            c.MessageEdited += e => { Edits.Add(e); Note("edited " + e.Channel + " " + e.Id + " " + e.Text); };
            c.ReactionChanged += r => { Reactions.Add(r); Note("reaction " + r.Channel + " " + r.Id + " " + r.User + " " + r.Emoji + " " + r.Added); };
            c.ReadCursorMoved += (ch, seq) => Note("read " + ch + " " + seq);
            c.Typing += p => Note("typing " + p.Channel + " " + p.User + " " + p.Name);
        }

        void Note(string s)
        {
            Log.Add(s);
            Threads.Add(Environment.CurrentManagedThreadId);
        }

        /// <summary>Dispatches (as a game's Update would) until cond holds.</summary>
        public async Task Until(Func<bool> cond, string what, int timeoutMs = 5000)
        {
            var sw = Stopwatch.StartNew();
            while (true)
            {
                c.DispatchPending();
                if (cond()) return;
                if (sw.ElapsedMilliseconds > timeoutMs) throw new AssertionException("timed out waiting for " + what + "; events: " + string.Join(" | ", Log));
                await Task.Delay(5);
            }
        }
    }
}
