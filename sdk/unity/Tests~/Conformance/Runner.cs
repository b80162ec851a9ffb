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
        public string Ch, Id;
        public long Seq;
        public bool Recovered;
        public KaiwaError Err;
        public MessageEdit Edit;
        public ReactionChange Reaction;
    }

    /// <summary>A message a say step labelled.</summary>
    internal sealed class Sent
    {
        public string Id;
        public long Seq;
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
            C.MessageDeleted += (ch, id) => Events.Add(new Ev { Op = "deleted", Ch = ch, Id = id });
            C.MessageEdited += e => Events.Add(new Ev { Op = "edited", Ch = e.Channel, Id = e.Id, Edit = e });
            C.ReactionChanged += r => Events.Add(new Ev { Op = "reaction", Ch = r.Channel, Id = r.Id, Reaction = r });
            C.ReadCursorMoved += (ch, seq) => Events.Add(new Ev { Op = "read", Ch = ch, Seq = seq });
            C.Typing += p => Events.Add(new Ev { Op = "typing", Ch = p.Channel, Presence = p });
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
        readonly Dictionary<string, Sent> labels = new Dictionary<string, Sent>(); // the scenario's labelled messages

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
            labels.Clear();
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
            Func<Sent> msg = () =>
            {
                Sent m;
                if (!labels.TryGetValue(st.Str("msg"), out m)) throw new StepFailed("no message labelled \"" + st.Str("msg") + "\"");
                return m;
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
                        string cid = st.Str("cid"), replyTo = st.Str("reply_to");
                        var o = new SayOptions { Cid = cid == "" ? null : cid };
                        Sent to;
                        if (replyTo != "" && labels.TryGetValue(replyTo, out to)) o.ReplyTo = to.Id;
                        if (st.V["attachments"] != null)
                        {
                            o.Attachments = st.V["attachments"].Items.Select(a => new Attachment(a["type"].AsString, a["url"].AsString,
                                (int)Num(a, "width"), (int)Num(a, "height"), a["name"] == null ? null : a["name"].AsString)).ToList();
                        }
                        var err = await Try(async () => { res = await c.C.SayAsync(st.Str("ch"), st.Str("text"), o, ct); });
                        if (err != null || st.Fails != "")
                        {
                            Check(WantFail(st, err));
                            return;
                        }
                        sayIds[i] = res.Id;
                        if (st.Str("label") != "") labels[st.Str("label")] = new Sent { Id = res.Id, Seq = res.Seq };
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
                        if (st.V["texts"] != null)
                        {
                            var want = st.V["texts"].Items.Select(t => t.AsString).ToList();
                            if (!got.SequenceEqual(want)) throw new StepFailed("history " + Quote(got) + ", want " + Quote(want));
                        }
                        var wantMsgs = st.V["messages"];
                        if (wantMsgs != null)
                        {
                            if (msgs.Count != wantMsgs.Items.Count) throw new StepFailed("history " + Quote(got) + ", want " + wantMsgs.Items.Count + " messages");
                            for (int n = 0; n < msgs.Count; n++)
                            {
                                try
                                {
                                    MatchMessage(msgs[n], wantMsgs.Items[n]);
                                }
                                catch (StepFailed e)
                                {
                                    throw new StepFailed("history[" + n + "]: " + e.Message);
                                }
                            }
                        }
                        return;
                    }
                case "edit":
                    need();
                    Check(WantFail(st, await Try(() => c.C.EditAsync(st.Str("ch"), msg().Id, st.Str("text"), ct))));
                    return;
                case "delete":
                    need();
                    Check(WantFail(st, await Try(() => c.C.DeleteAsync(st.Str("ch"), msg().Id, ct))));
                    return;
                case "react":
                    need();
                    Check(WantFail(st, await Try(() => c.C.ReactAsync(st.Str("ch"), msg().Id, st.Str("emoji"), ct))));
                    return;
                case "unreact":
                    need();
                    Check(WantFail(st, await Try(() => c.C.UnreactAsync(st.Str("ch"), msg().Id, st.Str("emoji"), ct))));
                    return;
                case "read":
                    need();
                    Check(WantFail(st, await Try(() => c.C.MarkReadAsync(st.Str("ch"), msg().Seq, ct))));
                    return;
                case "unread":
                    {
                        need();
                        string ch = st.Str("ch");
                        long want = st.Int("count"), got = -1;
                        await Poll(async () =>
                        {
                            var counts = await c.C.UnreadAsync(ch, ct);
                            UnreadCount u;
                            got = counts.TryGetValue(ch, out u) ? u.Count : -1;
                            return got == want;
                        }, deadline, () => "unread count of " + ch + " is " + got + ", want " + want);
                        return;
                    }
                case "block":
                    need();
                    Check(WantFail(st, await Try(() => c.C.BlockAsync(st.Str("user"), ct))));
                    return;
                case "unblock":
                    need();
                    Check(WantFail(st, await Try(() => c.C.UnblockAsync(st.Str("user"), ct))));
                    return;
                case "typing":
                    need();
                    Check(WantFail(st, await Try(() => c.C.TypingAsync(st.Str("ch"), ct))));
                    return;
                case "search":
                    {
                        need();
                        string q = st.Str("q"), ch = st.Str("ch") == "" ? null : st.Str("ch");
                        if (st.Fails != "")
                        {
                            Check(WantFail(st, await Try(() => c.C.SearchAsync(q, ch, st.Int("limit"), null, ct))));
                            return;
                        }
                        var want = st.V["texts"].Items.Select(t => t.AsString).ToList();
                        var got = new List<string>();
                        await Poll(async () =>
                        {
                            var page = await c.C.SearchAsync(q, ch, st.Int("limit"), null, ct);
                            got = page.Messages.Select(m => m.Text).ToList();
                            return got.SequenceEqual(want);
                        }, deadline, () => "search \"" + q + "\" found " + Quote(got) + ", want " + Quote(want));
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
                        var changes = c.Events.Where(e => e.Op == "edited" || e.Op == "deleted" || e.Op == "reaction").ToList();
                        if (changes.Count > 0) throw new StepFailed(changes.Count + " edited, deleted or reaction events not expected, the first " + changes[0].Op + " of " + changes[0].Id);
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

        // Poll calls f every 100 ms until it is done or the deadline passes:
        // for what follows the message log by a moment (unread counts, search).
        static async Task Poll(Func<Task<bool>> f, DateTime deadline, Func<string> why)
        {
            while (!await f())
            {
                if (DateTime.UtcNow > deadline) throw new StepFailed(why());
                await Task.Delay(100);
            }
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
                MatchMessage(ev.Msg, v["message"]);
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
            foreach (var op in new[] { "edited", "deleted", "reaction" })
            {
                var w = v[op];
                if (w == null) continue;
                string ch = w["ch"].AsString, label = w["msg"].AsString;
                Sent m;
                string id = labels.TryGetValue(label, out m) ? m.Id : null;
                var ev = await Take(c, e => e.Op == op && e.Ch == ch && e.Id == id, deadline, op + " event about " + label + " (" + id + ")");
                if (op == "edited" && (ev.Edit.Text != w["text"].AsString || ev.Edit.EditedAt == 0))
                {
                    throw new StepFailed("edited \"" + ev.Edit.Text + "\" at " + ev.Edit.EditedAt + ", want " + w.Raw);
                }
                if (op == "reaction")
                {
                    var r = ev.Reaction;
                    var added = w["added"];
                    if (r.User != w["user"].AsString || r.Emoji != w["emoji"].AsString || (added != null && r.Added != (added.Kind == JsonKind.True)) || !SameCounts(r.Reactions, w["counts"]))
                    {
                        throw new StepFailed("reaction " + r.User + " " + r.Emoji + " " + r.Added + " [" + string.Join(", ", r.Reactions) + "], want " + w.Raw);
                    }
                }
                return;
            }
            if (v["read"] != null)
            {
                string ch = v["read"]["ch"].AsString, label = v["read"]["msg"].AsString;
                Sent m;
                long seq = labels.TryGetValue(label, out m) ? m.Seq : -1;
                await Take(c, e => e.Op == "read" && e.Ch == ch && e.Seq == seq, deadline, "read of " + ch + " up to " + seq);
                return;
            }
            if (v["typing"] != null)
            {
                string ch = v["typing"]["ch"].AsString, user = v["typing"]["user"].AsString;
                var ev = await Take(c, e => e.Op == "typing" && e.Ch == ch, deadline, "typing in " + ch);
                if (ev.Presence.User != user) throw new StepFailed("typing by " + ev.Presence.User + ", want " + user);
                return;
            }
            if (v["unread"] != null)
            {
                string ch = v["unread"]["ch"].AsString;
                long want = Num(v["unread"], "count");
                var ready = c.C.Ready;
                UnreadCount got;
                if (ready == null || !ready.Unread.TryGetValue(ch, out got) || got.Count != want)
                {
                    throw new StepFailed("the latest ready's unread count of " + ch + " is " + (ready != null && ready.Unread.TryGetValue(ch, out got) ? got.ToString() : "not given") + ", want " + want);
                }
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

        static long Num(JsonValue o, string k)
        {
            var m = o[k];
            long n;
            return m != null && m.TryGetInt64(out n) ? n : 0;
        }

        // SameCounts reports whether reactions are exactly the counts of want ({emoji: count}).
        static bool SameCounts(IReadOnlyList<Reaction> reactions, JsonValue want)
        {
            var members = want == null ? new List<KeyValuePair<string, JsonValue>>() : want.Members.ToList();
            if (reactions.Count != members.Count) return false;
            return members.All(kv => reactions.Any(r => r.Emoji == kv.Key && r.Count == Num(want, kv.Key)));
        }

        // MatchMessage checks the fields a scenario names: as the Go runner's matchMessage.
        void MatchMessage(Message m, JsonValue want)
        {
            foreach (var kv in want.Members)
            {
                var w = kv.Value;
                bool ok;
                switch (kv.Key)
                {
                    case "reply_to":
                        Sent to;
                        ok = labels.TryGetValue(w.AsString, out to) && m.ReplyTo == to.Id;
                        break;
                    case "quote":
                        ok = m.Quote != null && (m.Quote.From ?? "") == w["from"].AsString && m.Quote.Text == w["text"].AsString;
                        break;
                    case "attachments":
                        ok = m.Attachments.Select(a => a.Url).SequenceEqual(w.Items.Select(u => u.AsString));
                        break;
                    case "reactions":
                        ok = SameCounts(m.Reactions, w);
                        break;
                    default:
                        ok = Field(m, kv.Key) == Plain(w);
                        break;
                }
                if (!ok) throw new StepFailed("message " + kv.Key + ": want " + w.Raw + " (message " + Describe(m) + ")");
            }
        }

        // Field is a message's field as the scenarios compare it (Go's fmt.Sprint).
        static string Field(Message m, string k)
        {
            switch (k)
            {
                case "ch": return m.Channel;
                case "text": return m.Text;
                case "from": return m.From ?? "";
                case "system": return m.System ? "true" : "false";
                case "edited": return m.EditedAt != 0 ? "true" : "false";
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
            return "{ch " + m.Channel + " id " + m.Id + " seq " + m.Seq + " from " + m.From + " text \"" + m.Text + "\" system " + m.System +
                " reply_to " + m.ReplyTo + " quote " + (m.Quote == null ? "none" : m.Quote.From + " \"" + m.Quote.Text + "\"") +
                " attachments " + m.Attachments.Count + " reactions [" + string.Join(", ", m.Reactions) + "] edited_at " + m.EditedAt + "}";
        }

        static string Quote(List<string> xs)
        {
            return "[" + string.Join(" ", xs.Select(x => "\"" + x + "\"")) + "]";
        }
    }
}
