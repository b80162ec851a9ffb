using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Kaiwa;

namespace Kaiwa.Tests
{
    /// <summary>A client connected to a fake server, and what it raised.</summary>
    internal sealed class Live : IDisposable
    {
        public KaiwaClient C;
        public Recorder R;
        public FakeConn Conn;
        public JsonValue Auth;

        public void Dispose() { C.Dispose(); }
    }

    internal static class ClientTests
    {
        internal static KaiwaOptions Opts()
        {
            return new KaiwaOptions
            {
                Token = "t:secret",
                MinBackoff = TimeSpan.FromMilliseconds(10),
                MaxBackoff = TimeSpan.FromMilliseconds(50),
                RequestTimeout = TimeSpan.FromSeconds(5),
                ConnectTimeout = TimeSpan.FromSeconds(5),
                HandshakeTimeout = TimeSpan.FromSeconds(2),
            };
        }

        internal static string Ready(string channels = "[]", string seqs = null)
        {
            return "{\"op\":\"ready\",\"user\":\"alice\",\"name\":\"Alice\",\"channels\":" + channels +
                ",\"version\":\"v2\",\"server_time\":1767225600000" + (seqs == null ? "" : ",\"seqs\":" + seqs) + "}";
        }

        internal static string Msg(string ch, string text, long seq = 0, long prev = 0)
        {
            return "{\"op\":\"msg\",\"ch\":\"" + ch + "\",\"id\":\"m" + seq + "\"" + (seq > 0 ? ",\"seq\":" + seq + ",\"prev\":" + prev : "") +
                ",\"from\":\"bob\",\"name\":\"Bob\",\"text\":\"" + text + "\",\"ts\":1767225600000}";
        }

        // Start connects a client to srv: the fake server answers its auth
        // with ready (and extra ops in the same frame).
        internal static async Task<Live> Start(FakeServer srv, string version, KaiwaOptions o = null, string ready = null, params string[] extra)
        {
            var c = new KaiwaClient(srv.Url(version), o ?? Opts());
            var live = new Live { C = c, R = new Recorder(c) };
            var connecting = c.ConnectAsync();
            live.Conn = await srv.AcceptAsync();
            live.Auth = await live.Conn.ExpectOpAsync("auth");
            await live.Conn.SendAsync(new[] { ready ?? Ready() }.Concat(extra).ToArray());
            await connecting;
            return live;
        }

        // Reconnected accepts the client's next connection and answers it.
        internal static async Task<JsonValue> Reconnected(FakeServer srv, Live live, string ready = null)
        {
            live.Conn = await srv.AcceptAsync();
            var auth = await live.Conn.ExpectOpAsync("auth");
            await live.Conn.SendAsync(ready ?? Ready());
            await live.R.Until(() => live.C.State == ClientState.Connected, "connected again");
            return auth;
        }

        internal static async Task Ping(Live live)
        {
            var ping = live.C.PingAsync();
            var op = await live.Conn.ExpectOpAsync("ping");
            await live.Conn.ReplyAsync(op, "{\"op\":\"pong\"}");
            await ping;
        }

        internal static string ResumeOf(JsonValue auth)
        {
            var r = auth["resume"];
            return r == null ? "" : string.Join(",", r.Members.Select(m => m.Key + "=" + m.Value.Raw).OrderBy(s => s, StringComparer.Ordinal));
        }

        [Test]
        static async Task ConnectsWithTheTokenInTheFirstFrame()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2", null, Ready("[\"guild.1\"]")))
            {
                Assert.Equal("t:secret", live.Auth["token"].AsString, "the token");
                Assert.Equal(null, live.Auth["resume"], "resume on a first connection");
                Assert.True(!live.Conn.Headers.ContainsKey("Authorization"), "no Authorization header");
                Assert.Equal("/v2/ws", live.Conn.Path, "the path, with no query");
                Assert.True(!live.Conn.ClientHasE, "the first frame echoes nothing");
                Assert.Equal("alice", live.C.Ready.User, "Ready.User");
                Assert.Seq(new[] { "guild.1" }, live.C.Ready.Channels, "Ready.Channels");
                Assert.Equal(ClientState.Connected, live.C.State, "State");
                await live.R.Until(() => live.R.States.Count == 2, "two state events");
                Assert.Seq(new[] { ClientState.Connecting, ClientState.Connected }, live.R.States, "the states");
            }
        }

        [Test]
        static async Task ARefusedTokenFailsAtOnce()
        {
            using (var srv = new FakeServer())
            {
                var c = new KaiwaClient(srv.Url("v2"), Opts());
                var r = new Recorder(c);
                var connecting = c.ConnectAsync();
                var conn = await srv.AcceptAsync();
                await conn.ExpectOpAsync("auth");
                await conn.SendAsync("{\"op\":\"error\",\"code\":\"token_expired\",\"message\":\"token expired\"}");
                await conn.CloseAsync(4001, "unauthorized");
                var e = await Assert.FailsWith(ErrorCodes.TokenExpired, () => connecting, "ConnectAsync");
                Assert.Equal("token expired", e.ServerMessage, "the server's message");
                await srv.NoConnectionAsync(300);
                Assert.Equal(ClientState.Closed, c.State, "State");
                await Assert.ThrowsAsync<InvalidOperationException>(() => c.ConnectAsync(), "a second ConnectAsync");
                await Assert.FailsWith(ErrorCodes.TokenExpired, () => c.JoinAsync("lobby"), "a request after the refusal");
                await r.Until(() => r.States.LastOrDefault() == ClientState.Closed, "the Closed state");
                c.Dispose();
            }
        }

        [Test]
        static async Task BadInputIsReportedAndTheConnectionGoesOn()
        {
            var o = Opts();
            o.ReadLimit = 2048;
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2", o))
            {
                var conn = live.Conn;
                string[] bad =
                {
                    "not json",
                    "[1,2]",
                    "{\"ops\":[{\"op\":\"pong\"}]}",
                    "{\"t\":-1,\"ops\":[{\"op\":\"pong\"}]}",
                    "{\"t\":1.5,\"ops\":[{\"op\":\"pong\"}]}",
                    "{\"t\":9007199254740992,\"ops\":[{\"op\":\"pong\"}]}",
                    "{\"t\":1,\"e\":\"x\",\"ops\":[{\"op\":\"pong\"}]}",
                    "{\"t\":1,\"ops\":{}}",
                    "{\"t\":1,\"ops\":[]}",
                    "{\"t\":1,\"ops\":[1]}",
                    "{\"t\":1,\"ops\":[{\"op\":5}]}",
                    "{\"t\":1,\"ops\":[{\"ch\":\"lobby\"}]}",
                    "{\"t\":1,\"ops\":[{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m1\",\"seq\":\"x\",\"text\":\"a\"}]}",
                    "{\"t\":1,\"ops\":[{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m1\",\"seq\":-3,\"text\":\"a\"}]}",
                    "{\"t\":1,\"ops\":[{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m1\",\"text\":5}]}",
                    "{\"t\":1,\"ops\":[{\"op\":\"msg\",\"id\":\"m1\",\"text\":\"no channel\"}]}",
                    "{\"t\":1,\"ops\":[{\"op\":\"presence\",\"ch\":\"lobby\",\"user\":5,\"event\":\"join\"}]}",
                    "{\"t\":1,\"ops\":[{\"op\":\"resumed\",\"ch\":\"lobby\",\"recovered\":\"yes\"}]}",
                    "{\"t\":1,\"ops\":[{\"op\":\"msg\",\"ch\":\"lobby\",\"text\":\"" + new string('x', 5000) + "\"}]}",
                };
                foreach (var b in bad) await conn.SendRawAsync(b);
                await conn.SendFrameAsync(2, new byte[] { 1, 2, 3 });                        // binary
                await conn.SendAsync("{\"op\":\"an-op-of-a-newer-server\",\"x\":1}");          // ignored, not an error
                await conn.SendAsync(Msg("lobby", "still here", 3));
                int want = bad.Length + 1;
                await live.R.Until(() => live.R.Messages.Count == 1, "the good message");
                Assert.Equal(want, live.R.Errors.Count, "bad_frame errors (" + string.Join(" | ", live.R.Errors) + ")");
                Assert.True(live.R.Errors.All(e => e.Code == ErrorCodes.BadFrame), "every error is bad_frame");
                Assert.Equal("still here", live.R.Messages[0].Text, "the good message");
                await Ping(live);
                Assert.Equal(ClientState.Connected, live.C.State, "State");
                await srv.NoConnectionAsync(100);
            }
        }

        [Test]
        static async Task TextThatIsNotUtf8EndsTheConnectionAndTheClientResumes()
        {
            // RFC 6455 has the client fail the connection (ClientWebSocket
            // does); the client then reconnects as after any loss.
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                await live.Conn.SendAsync(Msg("lobby", "a", 4));
                await live.Conn.SendFrameAsync(1, new byte[] { (byte)'{', 0xff, 0xfe, (byte)'}' });
                var auth = await Reconnected(srv, live);
                Assert.Equal("lobby=4", ResumeOf(auth), "resume");
            }
        }

        [Test]
        static async Task BadInputBeforeReadyIsReportedToo()
        {
            using (var srv = new FakeServer())
            {
                var c = new KaiwaClient(srv.Url("v1"), Opts());
                var r = new Recorder(c);
                var connecting = c.ConnectAsync();
                var conn = await srv.AcceptAsync();
                await conn.ExpectOpAsync("auth");
                await conn.SendRawAsync("garbage");
                await conn.SendRawAsync("{\"op\":\"ready\",\"user\":\"alice\",\"channels\":\"lobby\",\"server_time\":1}");
                await connecting;
                await r.Until(() => r.Errors.Count == 2, "two errors");
                Assert.Equal("alice", c.Ready.User, "a ready with a bad member still counts");
                c.Dispose();
            }
        }

        [Test]
        static async Task V1FramesAreOneOpEach()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v1"))
            {
                await live.Conn.SendRawAsync(Msg("lobby", "a"));
                await live.Conn.SendRawAsync(Msg("lobby", "a"));
                await live.Conn.SendRawAsync("not json");
                await live.R.Until(() => live.R.Messages.Count == 2 && live.R.Errors.Count == 1, "two messages and an error");
                Assert.Equal(null, live.C.Rtt, "no RTT in v1");
                var ping = live.C.PingAsync();
                var op = await live.Conn.ExpectOpAsync("ping");
                Assert.Equal(null, op["t"], "v1 ops are not in envelopes");
                await live.Conn.ReplyAsync(op, "{\"op\":\"pong\"}");
                await ping;
            }
        }

        [Test]
        static async Task DataIsRelayedAsItIs()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                string data = "{ \"item\" : [1, 2.50, \"\\u00e9\"],\"n\":null }";
                await live.Conn.SendAsync("{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m1\",\"seq\":1,\"prev\":0,\"text\":\"\",\"data\":" + data + ",\"ts\":1}");
                await live.R.Until(() => live.R.Messages.Count == 1, "the message");
                Assert.Equal(data, live.R.Messages[0].Data, "Data");
                string mine = "{\"emote\" :\t\"wave\"}";
                var say = live.C.SayAsync("lobby", "", mine);
                var op = await live.Conn.ExpectOpAsync("say");
                Assert.True(op.Raw.Contains("\"data\":" + mine), "data sent as given: " + op.Raw);
                Assert.Equal(null, op["text"], "an empty text is left out");
                await live.Conn.ReplyAsync(op, "{\"op\":\"ok\",\"id\":\"m2\",\"seq\":2}");
                var res = await say;
                Assert.Equal("m2", res.Id, "the id");
                Assert.Equal(2L, res.Seq, "the seq");
                Assert.Throws<ArgumentException>(() => live.C.SayAsync("lobby", "x", "{\"open\":").GetAwaiter().GetResult(), "data that is not JSON");
                await Ping(live); // nothing else was sent
            }
        }

        [Test]
        static async Task MeasuresTheRoundTripFromEchoes()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                var conn = live.Conn;
                long readyT = conn.SentT;
                Assert.Equal(null, live.C.Rtt, "no RTT before an echo");
                await Task.Delay(30);

                // The server claims it held the frame 0 ms while it waited 80.
                var ping = live.C.PingAsync();
                var op = await conn.ExpectOpAsync("ping");
                Assert.True(conn.ClientHasE && conn.ClientE >= readyT + 30 && conn.ClientE <= conn.Now, "the client echoes ready's t plus the time held: e=" + conn.ClientE + ", ready's t " + readyT + ", now " + conn.Now);
                await Task.Delay(80);
                await conn.SendRawAsync("{\"t\":" + conn.Now + ",\"e\":" + conn.ClientT + ",\"ops\":[{\"op\":\"pong\",\"ref\":\"" + op["ref"].AsString + "\"}]}");
                await ping;
                double rtt = live.C.Rtt.Value.TotalMilliseconds;
                Assert.True(rtt >= 80 && rtt < 300, "RTT after an 80 ms hold that was not owned up to: " + rtt);

                // An honest echo: the time held is subtracted.
                ping = live.C.PingAsync();
                op = await conn.ExpectOpAsync("ping");
                await Task.Delay(80);
                long e = conn.ClientT + conn.HeldMs;
                await conn.SendRawAsync("{\"t\":" + conn.Now + ",\"e\":" + e + ",\"ops\":[{\"op\":\"pong\",\"ref\":\"" + op["ref"].AsString + "\"}]}");
                await ping;
                rtt = live.C.Rtt.Value.TotalMilliseconds;
                Assert.True(rtt < 60, "RTT with the hold subtracted: " + rtt);

                // An echo ahead of the client's clock is not a measurement.
                await conn.SendRawAsync("{\"t\":" + conn.Now + ",\"e\":" + (conn.ClientT + 100000) + ",\"ops\":[" + Msg("lobby", "x", 1) + "]}");
                await live.R.Until(() => live.R.Messages.Count == 1, "the message");
                Assert.Equal(rtt, live.C.Rtt.Value.TotalMilliseconds, "RTT after a bogus echo");
            }
        }

        [Test]
        static async Task ReconnectsWhenAskedAfterTheDelayAndResumes()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                await live.Conn.SendAsync(Msg("lobby", "a", 5, 0));
                await live.R.Until(() => live.R.Messages.Count == 1, "the message");
                var sw = Stopwatch.StartNew();
                await live.Conn.SendAsync("{\"op\":\"reconnect\",\"after_ms\":300}", "{\"op\":\"closing\",\"code\":1001,\"reason\":\"draining\",\"reconnect_after_ms\":300}");
                var auth = await Reconnected(srv, live);
                Assert.True(sw.ElapsedMilliseconds >= 280, "reconnected after " + sw.ElapsedMilliseconds + " ms, want 300");
                Assert.Equal("lobby=5", ResumeOf(auth), "resume");
                await live.R.Until(() => live.R.States.Count == 4, "four states");
                Assert.Seq(new[] { ClientState.Connecting, ClientState.Connected, ClientState.Reconnecting, ClientState.Connected }, live.R.States, "the states");
                Assert.Equal(0, live.R.Errors.Count, "errors");
            }
        }

        [Test]
        static async Task ResumesQuietChannelsFromWhereTheyWereJoined()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2", null, Ready("[\"guild\"]", "{\"guild\":7}")))
            {
                foreach (var j in new[] { "lobby:,\"seq\":41", "empty:,\"seq\":0", "old:" })
                {
                    string ch = j.Split(':')[0], extra = j.Substring(ch.Length + 1);
                    var join = live.C.JoinAsync(ch);
                    var op = await live.Conn.ExpectOpAsync("join");
                    await live.Conn.ReplyAsync(op, "{\"op\":\"ok\",\"ch\":\"" + ch + "\"" + extra + "}");
                    await join;
                }
                live.Conn.Dispose(); // the network drops
                live.Conn = await srv.AcceptAsync();
                var auth = await live.Conn.ExpectOpAsync("auth");
                Assert.Equal("empty=0,guild=7,lobby=41", ResumeOf(auth), "resume");
                await live.Conn.SendAsync(Ready("[\"empty\",\"guild\",\"lobby\"]"));
                var rejoin = await live.Conn.ExpectOpAsync("join");
                Assert.Equal("old", rejoin["ch"].AsString, "the channel with no known position is joined again");
                await live.Conn.ReplyAsync(rejoin, "{\"op\":\"ok\",\"ch\":\"old\"}");
                await Ping(live);
            }
        }

        [Test]
        static async Task RejoinsInV1AndForgetsChannelsRefused()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v1"))
            {
                foreach (var ch in new[] { "lobby", "staff" })
                {
                    var join = live.C.JoinAsync(ch);
                    var op = await live.Conn.ExpectOpAsync("join");
                    await live.Conn.ReplyAsync(op, "{\"op\":\"ok\",\"ch\":\"" + ch + "\"}");
                    await join;
                }
                live.Conn.Dispose();
                var auth = await Reconnected(srv, live);
                Assert.Equal(null, auth["resume"], "no resume in v1");
                var a = await live.Conn.ExpectOpAsync("join");
                Assert.Equal("lobby", a["ch"].AsString, "the first rejoin");
                await live.Conn.ReplyAsync(a, "{\"op\":\"ok\",\"ch\":\"lobby\"}");
                var b = await live.Conn.ExpectOpAsync("join");
                Assert.Equal("staff", b["ch"].AsString, "the second rejoin");
                await live.Conn.ReplyAsync(b, "{\"op\":\"error\",\"code\":\"forbidden\",\"message\":\"members only\"}");
                await live.R.Until(() => live.R.Errors.Count == 1, "the rejoin's error");
                Assert.Equal(ErrorCodes.Forbidden, live.R.Errors[0].Code, "the code");
                Assert.Equal("staff", live.R.Errors[0].Channel, "the channel");
                live.Conn.Dispose();
                await Reconnected(srv, live);
                var c = await live.Conn.ExpectOpAsync("join");
                Assert.Equal("lobby", c["ch"].AsString, "only lobby is joined again");
                await live.Conn.ReplyAsync(c, "{\"op\":\"ok\",\"ch\":\"lobby\"}");
                await Ping(live);
            }
        }

        [Test]
        static async Task ResendsAnInterruptedSendWithItsClientId()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                var say = live.C.SayAsync("lobby", "hello");
                var first = await live.Conn.ExpectOpAsync("say");
                string cid = first["cid"].AsString;
                Assert.True(cid != null && cid.Length == 22, "a fresh cid: " + cid);
                live.Conn.Dispose(); // the answer is lost with the connection
                await Reconnected(srv, live);
                var again = await live.Conn.ExpectOpAsync("say");
                Assert.Equal(cid, again["cid"].AsString, "the resend's cid");
                Assert.Equal("hello", again["text"].AsString, "the resend's text");
                await live.Conn.ReplyAsync(again, "{\"op\":\"ok\",\"id\":\"m9\",\"seq\":9}");
                var res = await say;
                Assert.Equal("m9", res.Id, "the id");
                Assert.Equal(9L, res.Seq, "the seq");
                Assert.Equal("lobby", res.Channel, "the channel");

                var dm = live.C.DmAsync("bob", "psst", null, "my-cid");
                var op = await live.Conn.ExpectOpAsync("dm");
                Assert.Equal("my-cid", op["cid"].AsString, "a cid of the caller's");
                Assert.Equal("bob", op["to"].AsString, "to");
                await live.Conn.ReplyAsync(op, "{\"op\":\"ok\",\"id\":\"m10\",\"seq\":10,\"ch\":\"dm:alice:bob\"}");
                Assert.Equal("dm:alice:bob", (await dm).Channel, "the direct channel");
            }
        }

        [Test]
        static async Task RetriesWhenTheServerCannotTellTheOutcome()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                var say = live.C.SayAsync("lobby", "hello");
                var first = await live.Conn.ExpectOpAsync("say");
                await live.Conn.ReplyAsync(first, "{\"op\":\"error\",\"code\":\"unavailable\",\"message\":\"bus\"}");
                var again = await live.Conn.ExpectOpAsync("say");
                Assert.Equal(first["cid"].AsString, again["cid"].AsString, "the cid");
                await live.Conn.ReplyAsync(again, "{\"op\":\"ok\",\"id\":\"m1\",\"seq\":1}");
                Assert.Equal("m1", (await say).Id, "the id");

                // Other refusals are not retried.
                var refused = live.C.SayAsync("lobby", "bad word");
                var op = await live.Conn.ExpectOpAsync("say");
                await live.Conn.ReplyAsync(op, "{\"op\":\"error\",\"code\":\"ng_word\",\"message\":\"no\"}");
                await Assert.FailsWith(ErrorCodes.NgWord, () => refused, "an NG word");
                await Ping(live);
            }
        }

        [Test]
        static async Task DropsRepeatsAndReportsGaps()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                await live.Conn.SendAsync(Msg("lobby", "five", 5, 0), Msg("lobby", "five again", 5, 0), Msg("lobby", "four", 4, 0), Msg("lobby", "seven", 7, 6), Msg("lobby", "eight", 8, 7));
                await live.R.Until(() => live.R.Messages.Count == 3, "three messages");
                Assert.Seq(new[] { "five", "seven", "eight" }, live.R.Messages.Select(m => m.Text), "the messages");
                Assert.Seq(new[] { "msg lobby five", "gap lobby 5 7", "msg lobby seven", "msg lobby eight" }, live.R.Log.Where(l => !l.StartsWith("state")), "the events in order");
                Assert.Equal(8L, live.C.LastSeqs["lobby"], "LastSeqs");
            }
        }

        [Test]
        static async Task ARevokedTokenEndsTheClient()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                await live.Conn.SendAsync("{\"op\":\"closing\",\"code\":4001,\"reason\":\"token revoked\"}");
                await live.Conn.CloseAsync(4001, "token revoked");
                await live.R.Until(() => live.R.States.LastOrDefault() == ClientState.Closed, "Closed");
                Assert.Equal(1, live.R.Errors.Count, "errors");
                Assert.Equal(ErrorCodes.Unauthorized, live.R.Errors[0].Code, "the code");
                Assert.Equal("token revoked", live.R.Errors[0].Message, "the reason");
                await srv.NoConnectionAsync(200);
                await Assert.FailsWith(ErrorCodes.Unauthorized, () => live.C.JoinAsync("lobby"), "a request after");
            }
        }

        [Test]
        static async Task AsksGetTokenOnTheGamesThreadWhenTheTokenIsRefused()
        {
            int calls = 0, thread = 0;
            var o = Opts();
            o.GetToken = async ct =>
            {
                calls++;
                thread = Environment.CurrentManagedThreadId;
                await Task.Delay(10, ct); // a request to the game server
                return "t:fresh";
            };
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2", o))
            {
                await live.Conn.CloseAsync(4001, "token revoked");
                var conn = await srv.AcceptAsync();
                var auth = await conn.ExpectOpAsync("auth");
                Assert.Equal("t:secret", auth["token"].AsString, "the token first tried again");
                await conn.SendAsync("{\"op\":\"error\",\"code\":\"unauthorized\",\"message\":\"unknown token\"}");
                await conn.CloseAsync(4001, "unauthorized");
                await Task.Delay(100);
                Assert.Equal(0, calls, "GetToken calls before DispatchPending");
                int me = 0;
                await live.R.Until(() =>
                {
                    me = Environment.CurrentManagedThreadId;
                    return calls == 1;
                }, "GetToken");
                Assert.Equal(me, thread, "the thread GetToken ran on");
                auth = await Reconnected(srv, live);
                Assert.Equal("t:fresh", auth["token"].AsString, "the token from GetToken");
                Assert.Equal(1, calls, "GetToken calls");
                Assert.Equal(0, live.R.Errors.Count, "errors");
            }
        }

        [Test]
        static async Task AFailedGetTokenEndsTheClientWithTheServersCode()
        {
            var o = Opts();
            o.GetToken = ct => { throw new InvalidOperationException("game server down"); };
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2", o))
            {
                await live.Conn.CloseAsync(4001, "token revoked");
                var conn = await srv.AcceptAsync();
                await conn.ExpectOpAsync("auth");
                await conn.SendAsync("{\"op\":\"error\",\"code\":\"token_expired\",\"message\":\"token expired\"}");
                await conn.CloseAsync(4001, "unauthorized");
                await live.R.Until(() => live.R.States.LastOrDefault() == ClientState.Closed, "Closed");
                Assert.Equal(ErrorCodes.TokenExpired, live.R.Errors.Single().Code, "the code");
                Assert.True(live.R.Errors.Single().Message.Contains("game server down"), "the message: " + live.R.Errors.Single().Message);
            }
        }

        [Test]
        static async Task TakesTheFirstTokenFromGetTokenWhenNoneIsGiven()
        {
            var o = Opts();
            o.Token = null;
            o.GetToken = ct => Task.FromResult("t:given");
            using (var srv = new FakeServer())
            using (var c = new KaiwaClient(srv.Url("v2"), o))
            {
                var r = new Recorder(c);
                var connecting = c.ConnectAsync();
                var accept = srv.AcceptAsync();
                await r.Until(() => accept.IsCompleted, "the connection (after GetToken ran in DispatchPending)");
                var conn = await accept;
                var auth = await conn.ExpectOpAsync("auth");
                Assert.Equal("t:given", auth["token"].AsString, "the token");
                await conn.SendAsync(Ready());
                await connecting;
            }
        }

        [Test]
        static void BacksOffWithFullJitter()
        {
            var o = Opts();
            o.MinBackoff = TimeSpan.FromMilliseconds(100);
            o.MaxBackoff = TimeSpan.FromSeconds(1);
            using (var c = new KaiwaClient("ws://127.0.0.1:1/v2/ws", o))
            {
                var ceilings = new[] { 100.0, 200, 400, 800, 1000, 1000, 1000 };
                for (int n = 0; n < ceilings.Length; n++)
                {
                    var xs = Enumerable.Range(0, 4000).Select(_ => c.Backoff(n).TotalMilliseconds).ToList();
                    double ceil = ceilings[n];
                    Assert.True(xs.All(x => x >= 0 && x <= ceil), "attempt " + n + ": within [0, " + ceil + "]");
                    Assert.True(xs.Max() > 0.95 * ceil && xs.Min() < 0.05 * ceil, "attempt " + n + ": spread over the whole range");
                    double mean = xs.Average();
                    Assert.True(mean > 0.45 * ceil && mean < 0.55 * ceil, "attempt " + n + ": mean " + mean + " near " + ceil / 2);
                }
                Assert.True(c.Backoff(1000).TotalMilliseconds <= 1000, "a large attempt number");
            }
        }

        [Test]
        static async Task EventsWaitForDispatchPendingOnTheCallersThread()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                await live.Conn.SendAsync(Msg("lobby", "a", 1), "{\"op\":\"presence\",\"ch\":\"lobby\",\"user\":\"bob\",\"name\":\"Bob\",\"event\":\"join\"}");
                var sw = Stopwatch.StartNew();
                while (live.C.PendingEvents < 4 && sw.ElapsedMilliseconds < 5000) await Task.Delay(5);
                await Task.Delay(50);
                Assert.Equal(0, live.R.Log.Count, "events raised before DispatchPending");
                int me = Environment.CurrentManagedThreadId;
                Assert.Equal(4, live.C.DispatchPending(), "events dispatched");
                Assert.True(live.R.Threads.All(t => t == me), "every handler ran on the dispatching thread");
                Assert.Seq(new[] { "state Connecting", "state Connected", "msg lobby a", "presence lobby bob join" }, live.R.Log, "the events");
                Assert.Equal(0, live.C.DispatchPending(), "nothing left");
            }
        }

        // A context whose callbacks run on one thread of its own, in order.
        sealed class ThreadContext : SynchronizationContext, IDisposable
        {
            readonly BlockingCollection<KeyValuePair<SendOrPostCallback, object>> q = new BlockingCollection<KeyValuePair<SendOrPostCallback, object>>();
            readonly Thread thread;
            public int ThreadId;

            public ThreadContext()
            {
                thread = new Thread(() =>
                {
                    ThreadId = Environment.CurrentManagedThreadId;
                    SetSynchronizationContext(this);
                    foreach (var p in q.GetConsumingEnumerable()) p.Key(p.Value);
                });
                thread.IsBackground = true;
                thread.Start();
                while (ThreadId == 0) Thread.Sleep(1);
            }

            public override void Post(SendOrPostCallback d, object state) { q.Add(new KeyValuePair<SendOrPostCallback, object>(d, state)); }

            public void Dispose() { q.CompleteAdding(); }
        }

        [Test]
        static async Task EventsCanBePostedToASynchronizationContext()
        {
            using (var ctx = new ThreadContext())
            using (var srv = new FakeServer())
            {
                var o = Opts();
                o.SynchronizationContext = ctx;
                var c = new KaiwaClient(srv.Url("v2"), o);
                var texts = new List<string>();
                var threads = new List<int>();
                int count = 0;
                c.MessageReceived += m =>
                {
                    texts.Add(m.Text);
                    threads.Add(Environment.CurrentManagedThreadId);
                    Interlocked.Increment(ref count);
                };
                var connecting = c.ConnectAsync();
                var conn = await srv.AcceptAsync();
                await conn.ExpectOpAsync("auth");
                await conn.SendAsync(Ready());
                await connecting;
                for (int i = 1; i <= 50; i++) await conn.SendAsync(Msg("lobby", "n" + i, i, i - 1));
                var sw = Stopwatch.StartNew();
                while (Volatile.Read(ref count) < 50 && sw.ElapsedMilliseconds < 5000) await Task.Delay(5);
                Assert.Equal(50, Volatile.Read(ref count), "messages delivered with no DispatchPending");
                await Task.Delay(20);
                lock (texts)
                {
                    Assert.Seq(Enumerable.Range(1, 50).Select(i => "n" + i), texts, "in order");
                    Assert.True(threads.All(t => t == ctx.ThreadId), "on the context's thread");
                }
                c.Dispose();
            }
        }

        [Test]
        static async Task AHandlerExceptionLeavesTheRestForTheNextCall()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                live.C.MessageReceived += m =>
                {
                    if (m.Text == "b") throw new InvalidOperationException("game bug");
                };
                await live.Conn.SendAsync(Msg("lobby", "a", 1), Msg("lobby", "b", 2, 1), Msg("lobby", "c", 3, 2));
                var sw = Stopwatch.StartNew();
                while (live.C.PendingEvents < 5 && sw.ElapsedMilliseconds < 5000) await Task.Delay(5);
                Assert.Throws<InvalidOperationException>(() => live.C.DispatchPending(), "the handler's exception");
                Assert.Seq(new[] { "a", "b" }, live.R.Messages.Select(m => m.Text), "delivered up to the throw");
                Assert.Equal(1, live.C.DispatchPending(), "the rest, next time");
                Assert.Seq(new[] { "a", "b", "c" }, live.R.Messages.Select(m => m.Text), "all delivered");
            }
        }

        [Test]
        static async Task AFullQueueStopsReadingUntilDispatched()
        {
            var o = Opts();
            o.MaxPendingEvents = 5;
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2", o))
            {
                for (int i = 1; i <= 20; i++) await live.Conn.SendAsync(Msg("lobby", "n" + i, i, i - 1));
                var ping = live.C.PingAsync();
                var op = await live.Conn.ExpectOpAsync("ping");
                await live.Conn.ReplyAsync(op, "{\"op\":\"pong\"}");
                await Task.Delay(200);
                Assert.True(!ping.IsCompleted, "the pong is not read while the queue is full");
                Assert.True(live.C.PendingEvents <= 6, "pending events: " + live.C.PendingEvents);
                await live.R.Until(() => ping.IsCompleted, "the pong");
                await ping;
                await live.R.Until(() => live.R.Messages.Count == 20, "every message");
                Assert.Seq(Enumerable.Range(1, 20).Select(i => "n" + i), live.R.Messages.Select(m => m.Text), "in order");
            }
        }

        [Test]
        static async Task DisposeEndsWaitingRequests()
        {
            using (var srv = new FakeServer())
            {
                var live = await Start(srv, "v2");
                var say = live.C.SayAsync("lobby", "hello");
                await live.Conn.ExpectOpAsync("say");
                live.C.Dispose();
                await Assert.ThrowsAsync<ObjectDisposedException>(() => say, "the send in flight");
                await Assert.ThrowsAsync<ObjectDisposedException>(() => live.C.JoinAsync("lobby"), "a request after Dispose");
                Assert.Equal(ClientState.Closed, live.C.State, "State");
                await live.R.Until(() => live.R.States.LastOrDefault() == ClientState.Closed, "the Closed state");
                var f = await live.Conn.ReadFrameAsync();
                Assert.Equal(8, f.Key, "a close frame");
                Assert.Equal(1000, (f.Value[0] << 8) | f.Value[1], "the close code");
                live.C.Dispose(); // twice is fine
                await srv.NoConnectionAsync(100);
            }
        }

        // A context that never runs what is posted to it: a game quitting.
        sealed class FrozenContext : SynchronizationContext
        {
            public override void Post(SendOrPostCallback d, object state) { }
        }

        [Test]
        static async Task DisposeClosesEvenWhenTheGameLoopHasStopped()
        {
            using (var srv = new FakeServer())
            {
                var live = await Start(srv, "v2");
                var prev = SynchronizationContext.Current;
                SynchronizationContext.SetSynchronizationContext(new FrozenContext());
                try
                {
                    live.C.Dispose();
                }
                finally
                {
                    SynchronizationContext.SetSynchronizationContext(prev);
                }
                var read = live.Conn.ReadFrameAsync();
                Assert.True(await Task.WhenAny(read, Task.Delay(3000)) == read, "a close frame within 3 s");
                Assert.Equal(8, read.Result.Key, "the frame's opcode");
            }
        }

        [Test]
        static async Task RequestsAreTimeBoundAndCancellable()
        {
            var o = Opts();
            o.RequestTimeout = TimeSpan.FromMilliseconds(300);
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2", o))
            {
                var sw = Stopwatch.StartNew();
                var join = live.C.JoinAsync("lobby");
                await live.Conn.ExpectOpAsync("join");
                await Assert.ThrowsAsync<TimeoutException>(() => join, "an unanswered join");
                Assert.True(sw.ElapsedMilliseconds >= 280 && sw.ElapsedMilliseconds < 2000, "timed out after " + sw.ElapsedMilliseconds + " ms");
                using (var cts = new CancellationTokenSource(100))
                {
                    var join2 = live.C.JoinAsync("lobby", cts.Token);
                    await live.Conn.ExpectOpAsync("join");
                    await Assert.ThrowsAsync<OperationCanceledException>(() => join2, "a cancelled join");
                }
                await Assert.ThrowsAsync<OperationCanceledException>(() => live.C.JoinAsync("lobby", new CancellationToken(true)), "a join cancelled before");
                await Ping(live);
            }
        }

        [Test]
        static async Task OversizedRequestsAreNotSent()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                await Assert.FailsWith(ErrorCodes.TooLarge, () => live.C.SayAsync("lobby", new string('x', 20000)), "a 20000-character text");
                await Ping(live); // the next op the server reads is the ping
            }
        }

        [Test]
        static async Task ChecksItsArguments()
        {
            foreach (var url in new[] { "http://x/v2/ws", "ws://x/v2/ws?token=a", "ws://u:p@x/v2/ws", "ws://x/v3/ws", "ws://x/ws", "x/v2/ws", "ws://x/v2/socket" })
            {
                Assert.Throws<ArgumentException>(() => new KaiwaClient(url, Opts()), url);
            }
            Assert.Throws<ArgumentException>(() => new KaiwaClient("ws://x/v2/ws", new KaiwaOptions()), "no token and no GetToken");
            var o = Opts();
            o.MaxBackoff = TimeSpan.FromMilliseconds(1);
            Assert.Throws<ArgumentException>(() => new KaiwaClient("ws://x/v2/ws", o), "MaxBackoff under MinBackoff");
            using (var c = new KaiwaClient("wss://chat.example.com/kaiwa/v2/ws", Opts()))
            {
                Assert.Equal("v2", c.Version, "Version");
                Assert.Equal(ClientState.Idle, c.State, "State before ConnectAsync");
                await Assert.ThrowsAsync<InvalidOperationException>(() => c.JoinAsync("lobby"), "a request before ConnectAsync");
                await Assert.ThrowsAsync<ArgumentException>(() => c.JoinAsync(""), "an empty channel");
            }
        }

        [Test]
        static async Task ConnectAsyncIsTimeBound()
        {
            int port;
            using (var srv = new FakeServer()) port = srv.Port; // nothing listens there now
            var o = Opts();
            o.ConnectTimeout = TimeSpan.FromMilliseconds(300);
            using (var c = new KaiwaClient("ws://127.0.0.1:" + port + "/v2/ws", o))
            {
                var sw = Stopwatch.StartNew();
                await Assert.ThrowsAsync<TimeoutException>(() => c.ConnectAsync(), "ConnectAsync to nowhere");
                Assert.True(sw.ElapsedMilliseconds < 3000, "gave up after " + sw.ElapsedMilliseconds + " ms");
                Assert.Equal(ClientState.Closed, c.State, "State");
            }
        }

        [Test]
        static async Task PushedOpsBecomeEvents()
        {
            using (var srv = new FakeServer())
            using (var live = await Start(srv, "v2"))
            {
                await live.Conn.SendAsync(
                    "{\"op\":\"presence\",\"ch\":\"lobby\",\"user\":\"bob\",\"name\":\"Bob\",\"event\":\"leave\"}",
                    "{\"op\":\"joined\",\"ch\":\"party.7\"}",
                    "{\"op\":\"left\",\"ch\":\"party.7\",\"reason\":\"channel deleted\"}",
                    "{\"op\":\"deleted\",\"ch\":\"lobby\",\"id\":\"m3\"}",
                    "{\"op\":\"resumed\",\"ch\":\"lobby\",\"recovered\":false}",
                    "{\"op\":\"error\",\"code\":\"forbidden\",\"message\":\"resume guild.7: forbidden\"}",
                    "{\"op\":\"ok\",\"ref\":\"nobody-waits\"}",
                    "{\"op\":\"msg\",\"ch\":\"@alice\",\"id\":\"s1\",\"seq\":4,\"prev\":0,\"text\":\"welcome\",\"ts\":1,\"system\":true}");
                await live.R.Until(() => live.R.Messages.Count == 1, "the system message");
                Assert.Seq(new[]
                {
                    "presence lobby bob leave", "joined party.7", "left party.7 channel deleted", "deleted lobby m3",
                    "resumed lobby False", "error forbidden", "msg @alice welcome",
                }, live.R.Log.Where(l => !l.StartsWith("state")), "the events");
                var m = live.R.Messages[0];
                Assert.True(m.System && m.From == null && m.Name == null, "a system message has no sender");
            }
        }
    }
}
