using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Kaiwa;

// The C# SDK's conformance runner: it plays sdk/conformance/scenarios.json
// with KaiwaClient against the control server, step for step as the Go
// runner (sdk/conformance/runner_test.go) does with client.Session, and
// takes its clients' events through DispatchPending on its own frame loop,
// as a game would.
//
// Environment: KAIWA_CONFORMANCE_CONTROL (the control server's URL),
// KAIWA_CONFORMANCE_SCENARIOS (the file), KAIWA_CONFORMANCE_ONLY (a regular
// expression of the scenario names to play; all when empty).
//
// It prints one line per scenario and version, "PASS v2/NAME (N ms)" or
// "FAIL v2/NAME: step I STEP: WHY", and exits 1 when any failed.
namespace KaiwaConformance
{
    internal static class Program
    {
        static int Main()
        {
            string control = Environment.GetEnvironmentVariable("KAIWA_CONFORMANCE_CONTROL");
            string path = Environment.GetEnvironmentVariable("KAIWA_CONFORMANCE_SCENARIOS");
            if (string.IsNullOrEmpty(control) || string.IsNullOrEmpty(path))
            {
                Console.Error.WriteLine("KAIWA_CONFORMANCE_CONTROL and KAIWA_CONFORMANCE_SCENARIOS must be set");
                return 2;
            }
            var only = new Regex(Environment.GetEnvironmentVariable("KAIWA_CONFORMANCE_ONLY") ?? "");
            var loop = new FrameLoop();
            return loop.Run(() => new Runner(loop, control.TrimEnd('/')).PlayAll(File.ReadAllText(path), only));
        }
    }

    /// <summary>One step, as scenarios.json writes it.</summary>
    internal sealed class Step
    {
        public string Kind, Client, Raw;
        public JsonValue V;

        public Step(JsonValue v)
        {
            V = v;
            Raw = v.Raw;
            if (v.Kind != JsonKind.Object || v.Members.Count == 0) throw new FormatException("a step must be an object with a first key");
            Kind = v.Members[0].Key;
            Client = v.Members[0].Value.AsString;
        }

        public string Str(string k)
        {
            var m = V[k];
            return m == null ? "" : m.AsString ?? "";
        }

        public int Int(string k)
        {
            var m = V[k];
            long n;
            return m != null && m.TryGetInt64(out n) ? (int)n : 0;
        }

        public string Fails { get { return Str("fails"); } }
    }

    /// <summary>An event a client received and the scenario has not consumed yet.</summary>
    internal sealed class Ev
    {
        public string Op;
        public Message Msg;
        public Presence Presence;
        public ClientState State;
        public string Ch;
        public bool Recovered;
        public KaiwaError Err;
    }

    /// <summary>One client of a scenario and its unconsumed events (main thread only).</summary>
    internal sealed class RClient
    {
        public KaiwaClient C;
        public string Proxy;
        public readonly List<Ev> Events = new List<Ev>();

        public void Listen()
        {
            C.MessageReceived += m => Events.Add(new Ev { Op = "msg", Msg = m });
            C.PresenceChanged += p => Events.Add(new Ev { Op = "presence", Presence = p });
            C.StateChanged += s => Events.Add(new Ev { Op = "state", State = s });
            C.Resumed += (ch, rec) => Events.Add(new Ev { Op = "resumed", Ch = ch, Recovered = rec });
            C.Gap += g => Events.Add(new Ev { Op = "gap", Ch = g.Channel });
            C.ErrorReceived += e => Events.Add(new Ev { Op = "error", Err = e, Ch = e.Channel });
            C.ChannelJoined += ch => Events.Add(new Ev { Op = "joined", Ch = ch });
            C.ChannelLeft += (ch, reason) => Events.Add(new Ev { Op = "left", Ch = ch });
            C.MessageDeleted += (ch, id) => Events.Add(new Ev { Op = "deleted", Ch = ch });
        }
    }

    internal sealed class StepFailed : Exception
    {
        public StepFailed(string message) : base(message) { }
    }

    internal sealed class Runner
    {
        static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(15);
        static readonly TimeSpan ScenarioTimeout = TimeSpan.FromMinutes(2);

        readonly FrameLoop loop;
        readonly string control;
        readonly HttpClient http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };

        public Runner(FrameLoop loop, string control)
        {
            this.loop = loop;
            this.control = control;
        }

        public async Task<int> PlayAll(string file, Regex only)
        {
            var doc = JsonValue.Parse(file);
            int passed = 0, failed = 0;
            foreach (var sc in doc["scenarios"].Items)
            {
                string name = sc["name"].AsString;
                if (!only.IsMatch(name)) continue;
                foreach (var ver in sc["versions"].Items)
                {
                    string v = ver.AsString;
                    var sw = Stopwatch.StartNew();
                    string err = null;
                    try
                    {
                        await Play(sc, v);
                    }
                    catch (Exception e)
                    {
                        err = e is StepFailed ? e.Message : e.ToString();
                    }
                    if (err == null)
                    {
                        passed++;
                        Console.WriteLine("PASS " + v + "/" + name + " (" + sw.ElapsedMilliseconds + " ms)");
                    }
                    else
                    {
                        failed++;
                        Console.WriteLine("FAIL " + v + "/" + name + ": " + err.Replace("\n", "\n    "));
                    }
                    Console.Out.Flush();
                }
            }
            Console.WriteLine("csharp conformance: " + passed + " passed, " + failed + " failed");
            return failed > 0 ? 1 : 0;
        }

        // Call posts a JSON body to the control server and returns its answer.
        async Task<JsonValue> Call(string path, string body, CancellationToken ct)
        {
            var content = new StringContent(body, Encoding.UTF8, "application/json");
            using (var resp = await http.PostAsync(control + path, content, ct))
            {
                string text = await resp.Content.ReadAsStringAsync();
                if ((int)resp.StatusCode != 200) throw new StepFailed("control " + path + ": " + (int)resp.StatusCode + " " + text);
                return JsonValue.Parse(text);
            }
        }

        static JsonWriter Obj() { return new JsonWriter().BeginObject(); }

        async Task Play(JsonValue sc, string version)
        {
            var setup = sc["setup"];
            var users = setup == null ? null : setup["users"];
            var begin = Obj().Member("scenario", sc["name"].AsString + " " + version).Name("setup").Raw(setup == null ? "null" : setup.Raw).EndObject();
            var deadline = DateTime.UtcNow + ScenarioTimeout;
            using (var cts = new CancellationTokenSource(StepTimeout))
            {
                await Call("/begin", begin.ToString(), cts.Token);
            }
            var clients = new Dictionary<string, RClient>();
            var sayIds = new Dictionary<int, string>();
            try
            {
                var steps = sc["steps"].Items;
                for (int i = 0; i < steps.Count; i++)
                {
                    var st = new Step(steps[i]);
                    var left = deadline - DateTime.UtcNow;
                    var bound = left < StepTimeout ? left : StepTimeout;
                    if (bound <= TimeSpan.Zero) throw new StepFailed("step " + i + " " + st.Raw + ": the scenario's time is up");
                    using (var cts = new CancellationTokenSource(bound))
                    {
                        try
                        {
                            await PlayStep(st, i, version, users, clients, sayIds, cts.Token, DateTime.UtcNow + bound);
                        }
                        catch (Exception e)
                        {
                            string why = e is StepFailed ? e.Message : e.GetType().Name + ": " + e.Message;
                            throw new StepFailed("step " + i + " " + st.Raw + ": " + why);
                        }
                    }
                }
            }
            finally
            {
                foreach (var c in clients.Values) await CloseClient(c);
            }
        }

        async Task CloseClient(RClient c)
        {
            await Task.WhenAny(c.C.CloseAsync(), Task.Delay(TimeSpan.FromSeconds(5)));
            loop.Clients.Remove(c.C);
        }

        static string WantFail(Step st, Exception e)
        {
            if (st.Fails == "") return e == null ? null : e.GetType().Name + ": " + e.Message;
            var ke = e as KaiwaException;
            if (ke == null || ke.Code != st.Fails) return "got " + (e == null ? "no error" : e.GetType().Name + ": " + e.Message) + ", want " + st.Fails;
            return null;
        }

        static void Check(string failure)
        {
            if (failure != null) throw new StepFailed(failure);
        }

        async Task PlayStep(Step st, int i, string version, JsonValue users, Dictionary<string, RClient> clients, Dictionary<int, string> sayIds, CancellationToken ct, DateTime deadline)
        {
            RClient c = null;
            if (st.Client != null) clients.TryGetValue(st.Client, out c);
            Func<RClient> need = () =>
            {
                if (c == null) throw new StepFailed("no client \"" + st.Client + "\"");
                return c;
            };
            switch (st.Kind)
            {
                case "connect":
                    {
                        var u = users == null ? null : users[st.Str("as")];
                        int ttl = st.Int("ttl_seconds");
                        if (ttl == 0) ttl = 600;
                        var req = Obj().Member("user", st.Str("as"))
                            .Name("join").Raw(u == null || u["join"] == null ? "null" : u["join"].Raw)
                            .Name("publish").Raw(u == null || u["publish"] == null ? "null" : u["publish"].Raw)
                            .Member("ttl_seconds", ttl);
                        if (st.Str("token") == "forged") req.Member("forged", true);
                        if (st.Str("token") == "expired") req.Member("expired", true);
                        var tok = await Call("/token", req.EndObject().ToString(), ct);
                        var where = await Call("/connect-url", Obj().Member("version", version).EndObject().ToString(), ct);
                        var client = new KaiwaClient(where["url"].AsString, new KaiwaOptions
                        {
                            Token = tok["token"].AsString,
                            MinBackoff = TimeSpan.FromMilliseconds(50),
                            MaxBackoff = TimeSpan.FromSeconds(1),
                        });
                        var rc = new RClient { C = client, Proxy = where["proxy"].AsString };
                        rc.Listen();
                        loop.Clients.Add(client);
                        Exception err = null;
                        try
                        {
                            await client.ConnectAsync(ct);
                        }
                        catch (Exception e)
                        {
                            err = e;
                        }
                        if (err != null || st.Fails != "")
                        {
                            await CloseClient(rc);
                            if (err == null) throw new StepFailed("connected, want " + st.Fails);
                            Check(WantFail(st, err));
                            return;
                        }
                        clients[st.Client] = rc;
                        return;
                    }
                case "join":
                    need();
                    Check(WantFail(st, await Try(() => c.C.JoinAsync(st.Str("ch"), ct))));
                    return;
                case "leave":
                    need();
                    Check(WantFail(st, await Try(() => c.C.LeaveAsync(st.Str("ch"), ct))));
                    return;
                case "say":
                    {
                        need();
                        SendResult res = null;
                        string cid = st.Str("cid");
                        var err = await Try(async () => { res = await c.C.SayAsync(st.Str("ch"), st.Str("text"), null, cid == "" ? null : cid, ct); });
                        if (err != null || st.Fails != "")
                        {
                            Check(WantFail(st, err));
                            return;
                        }
                        sayIds[i] = res.Id;
                        var same = st.V["same_as"];
                        long n;
                        if (same != null && same.TryGetInt64(out n))
                        {
                            string want;
                            sayIds.TryGetValue((int)n, out want);
                            if (want != res.Id) throw new StepFailed("message id " + res.Id + ", want " + want + " (step " + n + "'s)");
                        }
                        return;
                    }
                case "say-many":
                    need();
                    for (int n = 0; n < st.Int("count"); n++)
                    {
                        await c.C.SayAsync(st.Str("ch"), st.Str("prefix") + n, null, null, ct);
                    }
                    return;
                case "dm":
                    need();
                    Check(WantFail(st, await Try(() => c.C.DmAsync(st.Str("to"), st.Str("text"), null, null, ct))));
                    return;
                case "history":
                    {
                        need();
                        var msgs = await c.C.HistoryAsync(st.Str("ch"), st.Int("limit"), null, ct);
                        var got = msgs.Select(m => m.Text).ToList();
                        var want = st.V["texts"] == null ? new List<string>() : st.V["texts"].Items.Select(t => t.AsString).ToList();
                        if (!got.SequenceEqual(want)) throw new StepFailed("history " + Quote(got) + ", want " + Quote(want));
                        return;
                    }
                case "expect":
                    need();
                    await Expect(c, st, deadline);
                    return;
                case "quiet":
                    {
                        need();
                        await c.C.PingAsync(ct);
                        await loop.NextFrame(); // what arrived before the pong is dispatched
                        var msgs = c.Events.Where(e => e.Op == "msg").ToList();
                        if (msgs.Count > 0) throw new StepFailed(msgs.Count + " messages not expected, the first " + Describe(msgs[0].Msg));
                        return;
                    }
                case "rtt":
                    {
                        // Up to five pings: one sample may carry a scheduling hiccup.
                        need();
                        long min = st.Int("min_ms"), max = st.Int("max_ms");
                        TimeSpan? rtt = null;
                        for (int ping = 0; ping < 5; ping++)
                        {
                            await c.C.PingAsync(ct);
                            rtt = c.C.Rtt;
                            if (rtt.HasValue && rtt.Value.TotalMilliseconds >= min && rtt.Value.TotalMilliseconds <= max) return;
                        }
                        throw new StepFailed("RTT " + (rtt.HasValue ? rtt.Value.TotalMilliseconds + " ms" : "unknown") + " after five pings, want " + min + "–" + max + " ms");
                    }
                case "wait-ms":
                    {
                        long ms;
                        st.V["wait-ms"].TryGetInt64(out ms);
                        await Task.Delay((int)ms);
                        return;
                    }
                case "cut":
                case "restore":
                    need();
                    await Call("/proxy/" + st.Kind, Obj().Member("proxy", c.Proxy).EndObject().ToString(), ct);
                    return;
                case "delay":
                    need();
                    await Call("/proxy/delay", Obj().Member("proxy", c.Proxy).Member("ms", st.Int("ms")).EndObject().ToString(), ct);
                    return;
                case "system":
                    await Call("/system", Obj().Member("ch", st.V["system"].AsString).Member("text", st.Str("text")).EndObject().ToString(), ct);
                    return;
                case "system-many":
                    await Call("/system-many", Obj().Member("ch", st.V["system-many"].AsString).Member("prefix", st.Str("prefix")).Member("count", st.Int("count")).EndObject().ToString(), ct);
                    return;
                case "revoke":
                    await Call("/revoke", Obj().Member("user", st.V["revoke"].AsString).EndObject().ToString(), ct);
                    return;
                case "kill-ua":
                case "drain-ua":
                    await Call("/" + st.Kind, Obj().Member("version", version).EndObject().ToString(), ct);
                    return;
                case "close":
                    need();
                    await CloseClient(c);
                    return;
            }
            throw new StepFailed("unknown step \"" + st.Kind + "\"");
        }

        static async Task<Exception> Try(Func<Task> f)
        {
            try
            {
                await f();
                return null;
            }
            catch (Exception e)
            {
                return e;
            }
        }

        // Take waits for the first unconsumed event that match accepts,
        // removes it and returns it. Events it skips stay.
        async Task<Ev> Take(RClient c, Func<Ev, bool> match, DateTime deadline, string what)
        {
            while (true)
            {
                for (int i = 0; i < c.Events.Count; i++)
                {
                    if (match(c.Events[i]))
                    {
                        var ev = c.Events[i];
                        c.Events.RemoveAt(i);
                        return ev;
                    }
                }
                if (DateTime.UtcNow > deadline) throw new StepFailed("no " + what + " within " + StepTimeout.TotalSeconds + " s (the client is " + Lower(c.C.State) + ")");
                await loop.NextFrame();
            }
        }

        async Task Expect(RClient c, Step st, DateTime deadline)
        {
            var v = st.V;
            if (v["message"] != null)
            {
                var ev = await Take(c, e => e.Op == "msg", deadline, "message");
                foreach (var kv in v["message"].Members)
                {
                    string got = Field(ev.Msg, kv.Key), want = Plain(kv.Value);
                    if (got != want) throw new StepFailed("message " + kv.Key + " = " + got + ", want " + want + " (message " + Describe(ev.Msg) + ")");
                }
                return;
            }
            if (v["messages"] != null)
            {
                var w = v["messages"];
                string ch = w["ch"].AsString;
                var want = w["texts"] == null ? new List<string>() : w["texts"].Items.Select(t => t.AsString).ToList();
                long count = 0;
                if (w["count"] != null) w["count"].TryGetInt64(out count);
                string prefix = w["prefix"] == null ? "" : w["prefix"].AsString;
                for (int n = 0; n < count; n++) want.Add(prefix + n);
                for (int n = 0; n < want.Count; n++)
                {
                    var ev = await Take(c, e => e.Op == "msg" && e.Msg.Channel == ch, deadline, "message " + n + " of " + want.Count + " (\"" + want[n] + "\")");
                    if (ev.Msg.Text != want[n]) throw new StepFailed("message " + n + " of " + want.Count + " is \"" + ev.Msg.Text + "\", want \"" + want[n] + "\"");
                }
                return;
            }
            if (v["presence"] != null)
            {
                var w = v["presence"];
                var ev = await Take(c, e => e.Op == "presence", deadline, "presence");
                var p = ev.Presence;
                if (p.Channel != w["ch"].AsString || p.User != w["user"].AsString || p.Event != w["event"].AsString)
                {
                    throw new StepFailed("presence " + p.Channel + " " + p.User + " " + p.Event + ", want " + w.Raw);
                }
                return;
            }
            if (v["state"] != null)
            {
                string want = v["state"].AsString;
                await Take(c, e => e.Op == "state" && Lower(e.State) == want, deadline, "state " + want);
                return;
            }
            if (v["resumed"] != null)
            {
                var w = v["resumed"];
                string ch = w["ch"].AsString;
                var ev = await Take(c, e => e.Op == "resumed" && e.Ch == ch, deadline, "resumed");
                bool want = w["recovered"] != null && w["recovered"].Kind == JsonKind.True;
                if (ev.Recovered != want) throw new StepFailed("resumed recovered " + ev.Recovered + ", want " + want);
                return;
            }
            if (v["error"] != null)
            {
                string code = v["error"]["code"].AsString;
                await Take(c, e => e.Op == "error" && e.Err.Code == code, deadline, "error " + code);
                return;
            }
            throw new StepFailed("unknown expectation");
        }

        static string Lower(ClientState s) { return s.ToString().ToLowerInvariant(); }

        // Field is a message's field as the scenarios compare it (Go's fmt.Sprint).
        static string Field(Message m, string k)
        {
            switch (k)
            {
                case "ch": return m.Channel;
                case "text": return m.Text;
                case "from": return m.From ?? "";
                case "system": return m.System ? "true" : "false";
            }
            return "<no field " + k + ">";
        }

        static string Plain(JsonValue v)
        {
            switch (v.Kind)
            {
                case JsonKind.String: return v.AsString;
                case JsonKind.True: return "true";
                case JsonKind.False: return "false";
            }
            return v.Raw;
        }

        static string Describe(Message m)
        {
            return "{ch " + m.Channel + " id " + m.Id + " seq " + m.Seq + " from " + m.From + " text \"" + m.Text + "\" system " + m.System + "}";
        }

        static string Quote(List<string> xs)
        {
            return "[" + string.Join(" ", xs.Select(x => "\"" + x + "\"")) + "]";
        }
    }
}
