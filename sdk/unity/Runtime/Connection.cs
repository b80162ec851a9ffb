using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Kaiwa
{
    /// <summary>What a <see cref="Connection"/> hands to its owner.</summary>
    internal interface IConnectionSink
    {
        /// <summary>
        /// Takes an op that answers no waiting request. Returns false to stop
        /// reading (the server asked for a reconnect). Called on the reader,
        /// in the order ops arrive.
        /// </summary>
        bool OnOp(Connection conn, string op, JsonValue v);

        /// <summary>Reports input that could not be read; the connection goes on.</summary>
        void OnBadFrame(Connection conn, string message);

        /// <summary>Completes when the owner can take more ops (its event queue has room).</summary>
        Task Room();
    }

    /// <summary>A request failed because its connection ended before the answer: the outcome is unknown.</summary>
    internal sealed class ConnectionLostException : Exception
    {
        public ConnectionLostException(string message, Exception inner = null) : base(message, inner) { }
    }

    /// <summary>
    /// One authenticated WebSocket session. It runs one reader (a task),
    /// which matches replies to requests by ref and hands everything else to
    /// its sink; requests may be made from any thread. Writes are serialised
    /// by writeLock (ClientWebSocket allows one send at a time); mu guards
    /// pending and the close fields, and is never held while awaiting.
    /// </summary>
    internal sealed class Connection
    {
        static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);
        const int InitialBuffer = 16 << 10;

        readonly ClientWebSocket ws;
        readonly bool v2;
        readonly Clock clock; // null in v1
        readonly IConnectionSink sink;
        readonly int readLimit;
        readonly int maxFrame;
        readonly SemaphoreSlim writeLock = new SemaphoreSlim(1, 1);
        readonly CancellationTokenSource life = new CancellationTokenSource();
        readonly TaskCompletionSource<bool> done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly object mu = new object();
        Dictionary<string, TaskCompletionSource<JsonValue>> pending = new Dictionary<string, TaskCompletionSource<JsonValue>>();
        List<JsonValue> early = new List<JsonValue>(); // ops that came with or after ready, before Start
        long refs;
        byte[] buf = new byte[InitialBuffer];
        int closeCode;
        string closeReason;
        int closingCode; // from a "closing" op
        string closingReason;
        int reconnectAfterMs;
        bool local;
        int started;
        Task closing;

        Connection(ClientWebSocket ws, bool v2, IConnectionSink sink, KaiwaOptions opts)
        {
            this.ws = ws;
            this.v2 = v2;
            this.sink = sink;
            readLimit = opts.ReadLimit;
            maxFrame = opts.MaxFrame;
            if (v2) clock = new Clock(); // v2 clocks count from the 101
        }

        /// <summary>What the server reported in "ready".</summary>
        public ReadyInfo Ready { get; private set; }

        /// <summary>Completes when the reader has ended.</summary>
        public Task Done { get { return done.Task; } }

        public bool IsDone { get { return done.Task.IsCompleted; } }

        /// <summary>The round-trip time (v2); null until measured, and in v1.</summary>
        public TimeSpan? Rtt { get { return clock == null ? null : clock.Rtt; } }

        /// <summary>
        /// The close code the server ended the session with: from its close
        /// frame, else from a "closing" op it sent before the connection
        /// dropped; 0 when neither came or the client closed.
        /// </summary>
        public int CloseCode
        {
            get
            {
                lock (mu) return local ? 0 : closeCode != 0 ? closeCode : closingCode;
            }
        }

        public string CloseReason
        {
            get
            {
                lock (mu) return closeCode != 0 ? closeReason : closingReason;
            }
        }

        /// <summary>The delay the server asked for before reconnecting ("reconnect", or "closing"'s reconnect_after_ms), in ms.</summary>
        public int ReconnectAfterMs
        {
            get
            {
                lock (mu) return reconnectAfterMs;
            }
        }

        /// <summary>
        /// Dials uri, authenticates with the first frame (carrying resume in
        /// v2), and returns once the server has reported ready. A refusal is a
        /// <see cref="KaiwaException"/> with the server's code; anything else
        /// (network, a close before ready) is another exception.
        /// </summary>
        public static async Task<Connection> OpenAsync(Uri uri, bool v2, string token, IDictionary<string, long> resume, KaiwaOptions opts, IConnectionSink sink, CancellationToken ct)
        {
            var ws = new ClientWebSocket();
            Connection c = null;
            try
            {
                await ws.ConnectAsync(uri, ct).ConfigureAwait(false);
                c = new Connection(ws, v2, sink, opts);
                var w = new JsonWriter().BeginObject().Member("op", "auth").Member("token", token);
                if (v2 && resume != null && resume.Count > 0)
                {
                    w.Name("resume").BeginObject();
                    foreach (var kv in resume) w.Member(kv.Key, kv.Value);
                    w.EndObject();
                }
                await c.SendAsync(w.EndObject().ToString(), false, ct).ConfigureAwait(false);
                await c.HandshakeAsync(ct).ConfigureAwait(false);
                return c;
            }
            catch
            {
                if (c != null) c.life.Cancel();
                ws.Abort();
                ws.Dispose();
                throw;
            }
        }

        // HandshakeAsync reads until "ready". An "error" before it is the
        // refusal; other ops wait in early.
        async Task HandshakeAsync(CancellationToken ct)
        {
            while (Ready == null)
            {
                string text = await ReceiveAsync(ct).ConfigureAwait(false);
                if (text == null)
                {
                    int code = CloseCode;
                    string why = code != 0 ? " (" + code.ToString(CultureInfo.InvariantCulture) + " " + CloseReason + ")" : "";
                    throw new ConnectionLostException("the server closed the connection before ready" + why);
                }
                List<JsonValue> ops = Split(text);
                if (ops == null) continue;
                foreach (var op in ops)
                {
                    if (Ready != null)
                    {
                        early.Add(op);
                        continue;
                    }
                    var r = new OpReader(op);
                    switch (r.Op)
                    {
                        case null:
                            sink.OnBadFrame(this, r.Error);
                            break;
                        case "ready":
                            Ready = ReadReady(r);
                            if (r.Error != null) sink.OnBadFrame(this, r.Error);
                            break;
                        case "error":
                            throw r.ToException();
                        default:
                            if (r.Op == "closing") NoteClosing(r);
                            early.Add(op);
                            break;
                    }
                }
            }
        }

        static ReadyInfo ReadReady(OpReader r)
        {
            var channels = new List<string>();
            var ch = r.Array("channels");
            if (ch != null)
            {
                foreach (var v in ch.Items)
                {
                    if (v.Kind == JsonKind.String) channels.Add(v.AsString);
                    else r.Fail("channels holds a " + v.Kind);
                }
            }
            var seqs = new Dictionary<string, long>();
            var sq = r.Object("seqs");
            if (sq != null)
            {
                foreach (var m in sq.Members)
                {
                    long n;
                    if (m.Value.TryGetInt64(out n) && n >= 0) seqs[m.Key] = n;
                    else r.Fail("seqs." + m.Key + " is not a seq");
                }
            }
            string sunset = null;
            var dep = r.Object("deprecated");
            if (dep != null)
            {
                var s = dep["sunset"];
                if (s != null && s.Kind == JsonKind.String) sunset = s.AsString;
                else sunset = "";
            }
            var blocks = new List<string>();
            var bl = r.Array("blocks");
            if (bl != null)
            {
                foreach (var v in bl.Items)
                {
                    if (v.Kind == JsonKind.String) blocks.Add(v.AsString);
                    else r.Fail("blocks holds a " + v.Kind);
                }
            }
            return new ReadyInfo(r.Str("user"), r.Str("name"), channels.AsReadOnly(), r.Str("version"), r.Long("server_time"), sunset, seqs,
                r.ReadUnread("unread"), blocks.AsReadOnly());
        }

        /// <summary>Starts the reader: the ops that came with ready first, then the socket.</summary>
        public void Start()
        {
            if (Interlocked.Exchange(ref started, 1) != 0 || done.Task.IsCompleted) return; // closed before it started
            Task.Run(() => ReadLoopAsync());
        }

        async Task ReadLoopAsync()
        {
            Exception err = null;
            try
            {
                var first = early;
                early = null;
                bool go = true;
                foreach (var op in first)
                {
                    if (!(go = Handle(op))) break;
                }
                while (go)
                {
                    await sink.Room().ConfigureAwait(false);
                    string text = await ReceiveAsync(life.Token).ConfigureAwait(false);
                    if (text == null) break;
                    List<JsonValue> ops = Split(text);
                    if (ops == null) continue;
                    foreach (var op in ops)
                    {
                        if (!(go = Handle(op))) break;
                    }
                }
            }
            catch (Exception e)
            {
                err = e;
            }
            Finish(err);
        }

        // ReceiveAsync reads one text frame. It returns null when the server
        // closed the session; a frame that cannot be read (binary, too large,
        // not UTF-8) is reported and skipped.
        async Task<string> ReceiveAsync(CancellationToken ct)
        {
            while (true)
            {
                int len = 0;
                long total = 0;
                bool tooLarge = false;
                WebSocketReceiveResult r;
                while (true)
                {
                    if (len == buf.Length)
                    {
                        if (buf.Length >= readLimit)
                        {
                            tooLarge = true;
                            len = 0; // the rest is read and dropped
                        }
                        else
                        {
                            var bigger = new byte[Math.Min(buf.Length * 2, readLimit)];
                            Buffer.BlockCopy(buf, 0, bigger, 0, len);
                            buf = bigger;
                        }
                    }
                    r = await ws.ReceiveAsync(new ArraySegment<byte>(buf, len, buf.Length - len), ct).ConfigureAwait(false);
                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        lock (mu)
                        {
                            closeCode = r.CloseStatus.HasValue ? (int)r.CloseStatus.Value : 1005;
                            closeReason = r.CloseStatusDescription ?? "";
                        }
                        return null;
                    }
                    len += r.Count;
                    total += r.Count;
                    if (r.EndOfMessage) break;
                }
                if (buf.Length > 4 * InitialBuffer) buf = new byte[InitialBuffer]; // after a large frame
                if (tooLarge || total > readLimit)
                {
                    sink.OnBadFrame(this, "a frame of " + total.ToString(CultureInfo.InvariantCulture) + " bytes, over the read limit of " + readLimit.ToString(CultureInfo.InvariantCulture));
                    continue;
                }
                if (r.MessageType != WebSocketMessageType.Text)
                {
                    sink.OnBadFrame(this, "a binary frame (the protocol has text frames only)");
                    continue;
                }
                try
                {
                    return StrictUtf8.GetString(buf, 0, len);
                }
                catch (ArgumentException)
                {
                    sink.OnBadFrame(this, "a text frame that is not UTF-8");
                }
            }
        }

        // Split returns the ops of a frame (v2: records its clocks), or null
        // after reporting a frame that is not the protocol's.
        List<JsonValue> Split(string text)
        {
            JsonValue v;
            try
            {
                v = JsonValue.Parse(text);
            }
            catch (JsonException ex)
            {
                sink.OnBadFrame(this, "a frame that is not JSON: " + ex.Message);
                return null;
            }
            if (v.Kind != JsonKind.Object)
            {
                sink.OnBadFrame(this, "a frame that is not a JSON object");
                return null;
            }
            if (!v2) return new List<JsonValue>(1) { v };
            long t, e = 0;
            var tv = v["t"];
            var ev = v["e"];
            var ops = v["ops"];
            string bad = null;
            if (tv == null || tv.IsNull) bad = "t is required";
            else if (!ReadClock(tv, out t)) bad = "t must be an integer from 0 to 2^53-1";
            else if (ev != null && !ev.IsNull && !ReadClock(ev, out e)) bad = "e must be an integer from 0 to 2^53-1";
            else if (ops == null || ops.Kind != JsonKind.Array) bad = "ops must be an array of op objects";
            else if (ops.Items.Count == 0) bad = "ops must not be empty";
            else
            {
                for (int i = 0; i < ops.Items.Count && bad == null; i++)
                {
                    if (ops.Items[i].Kind != JsonKind.Object) bad = "ops[" + i.ToString(CultureInfo.InvariantCulture) + "] is not a JSON object";
                }
            }
            if (bad != null)
            {
                sink.OnBadFrame(this, "a malformed envelope: " + bad);
                return null;
            }
            ReadClock(tv, out t);
            clock.Record(t, e, ev != null && !ev.IsNull);
            return new List<JsonValue>(ops.Items);
        }

        static bool ReadClock(JsonValue v, out long n)
        {
            n = 0;
            if (v.Kind != JsonKind.Number || v.Raw.StartsWith("-", StringComparison.Ordinal)) return false;
            return v.TryGetInt64(out n) && n <= Clock.MaxClock;
        }

        // Handle takes one op: the reply to a waiting request, or a push for
        // the sink. It reports false when reading should stop.
        bool Handle(JsonValue op)
        {
            var r = new OpReader(op);
            if (r.Op == null)
            {
                sink.OnBadFrame(this, r.Error);
                return true;
            }
            var refv = op["ref"];
            if (refv != null && refv.Kind == JsonKind.String)
            {
                TaskCompletionSource<JsonValue> tcs = null;
                lock (mu)
                {
                    if (pending != null && pending.TryGetValue(refv.AsString, out tcs)) pending.Remove(refv.AsString);
                }
                if (tcs != null)
                {
                    tcs.TrySetResult(op);
                    return true;
                }
            }
            if (r.Op == "closing")
            {
                NoteClosing(r);
                if (r.Error != null) sink.OnBadFrame(this, r.Error);
            }
            return sink.OnOp(this, r.Op, op);
        }

        void NoteClosing(OpReader r)
        {
            long code = r.Long("code");
            string reason = r.Str("reason");
            long after = r.Long("reconnect_after_ms");
            lock (mu)
            {
                closingCode = (int)Math.Min(Math.Max(code, 0), int.MaxValue);
                closingReason = reason ?? "";
                if (after > 0) reconnectAfterMs = (int)Math.Min(after, int.MaxValue);
            }
        }

        /// <summary>Notes the server's "reconnect" delay.</summary>
        public void NoteReconnect(long afterMs)
        {
            lock (mu) reconnectAfterMs = (int)Math.Min(Math.Max(afterMs, 0), int.MaxValue);
        }

        void Finish(Exception err)
        {
            Dictionary<string, TaskCompletionSource<JsonValue>> waiting;
            lock (mu)
            {
                waiting = pending;
                pending = null;
            }
            var lost = new ConnectionLostException(err == null ? "the connection ended" : "the connection was lost: " + err.Message, err);
            if (waiting != null)
            {
                foreach (var tcs in waiting.Values) tcs.TrySetException(lost);
            }
            done.TrySetResult(true);
        }

        /// <summary>
        /// Sends a request op (op and ref are written first, fields adds the
        /// rest) and returns the reply. An "error" reply is a
        /// <see cref="KaiwaException"/>; the connection's end before the reply
        /// a <see cref="ConnectionLostException"/>.
        /// </summary>
        public async Task<JsonValue> RequestAsync(string op, Action<JsonWriter> fields, string want, CancellationToken ct)
        {
            ct.ThrowIfCancellationRequested();
            string reference = "c" + Interlocked.Increment(ref refs).ToString(CultureInfo.InvariantCulture);
            var w = new JsonWriter().BeginObject().Member("op", op).Member("ref", reference);
            if (fields != null) fields(w);
            string text = w.EndObject().ToString();
            var tcs = new TaskCompletionSource<JsonValue>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (mu)
            {
                if (pending == null) throw new ConnectionLostException("the connection ended");
                pending[reference] = tcs;
            }
            JsonValue reply;
            try
            {
                await SendAsync(text, true, ct).ConfigureAwait(false);
                using (ct.Register(() => tcs.TrySetCanceled()))
                {
                    reply = await tcs.Task.ConfigureAwait(false);
                }
            }
            finally
            {
                lock (mu)
                {
                    if (pending != null) pending.Remove(reference);
                }
            }
            var r = new OpReader(reply);
            if (r.Op == "error") throw r.ToException();
            if (r.Op != want) throw new KaiwaException(ErrorCodes.BadFrame, "the reply to " + op + " is " + r.Op + ", want " + want);
            return reply;
        }

        // SendAsync writes one op as a frame (v2: in an envelope stamped with
        // the clocks). A request over maxFrame fails without being sent.
        async Task SendAsync(string op, bool bounded, CancellationToken ct)
        {
            await writeLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                string frame = op;
                if (v2)
                {
                    long t, e;
                    bool hasE;
                    clock.Stamp(out t, out e, out hasE);
                    var sb = new StringBuilder(op.Length + 48);
                    sb.Append("{\"t\":").Append(t.ToString(CultureInfo.InvariantCulture));
                    if (hasE) sb.Append(",\"e\":").Append(e.ToString(CultureInfo.InvariantCulture));
                    frame = sb.Append(",\"ops\":[").Append(op).Append("]}").ToString();
                }
                byte[] bytes = Encoding.UTF8.GetBytes(frame);
                if (bounded && bytes.Length > maxFrame)
                {
                    throw new KaiwaException(ErrorCodes.TooLarge, "a frame of " + bytes.Length.ToString(CultureInfo.InvariantCulture) + " bytes, the limit is " + maxFrame.ToString(CultureInfo.InvariantCulture));
                }
                try
                {
                    await ws.SendAsync(new ArraySegment<byte>(bytes), WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (!(ex is OperationCanceledException && ct.IsCancellationRequested))
                {
                    throw new ConnectionLostException("send: " + ex.Message, ex);
                }
            }
            finally
            {
                writeLock.Release();
            }
        }

        /// <summary>
        /// Ends the session: a normal close when it can be sent within a
        /// second, then the socket is dropped. Completes once the reader
        /// ended. Calls after the first return the same task.
        /// </summary>
        public Task CloseAsync()
        {
            lock (mu)
            {
                if (!done.Task.IsCompleted) local = true;
                // On the thread pool: not under mu, and never deferred to the
                // caller's SynchronizationContext (a game's next frame).
                if (closing == null) closing = Task.Run(() => CloseCoreAsync());
                return closing;
            }
        }

        async Task CloseCoreAsync()
        {
            try
            {
                using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1)))
                {
                    var state = ws.State;
                    if (state == WebSocketState.Open || state == WebSocketState.CloseReceived)
                    {
                        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", cts.Token).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception)
            {
                // The connection is going anyway.
            }
            life.Cancel();
            ws.Abort();
            if (Volatile.Read(ref started) == 0) Finish(null);
            await done.Task.ConfigureAwait(false);
            ws.Dispose();
        }

        /// <summary>Drops the connection at once, without a close frame.</summary>
        public void Abort()
        {
            lock (mu)
            {
                if (!done.Task.IsCompleted) local = true;
            }
            life.Cancel();
            ws.Abort();
            if (Volatile.Read(ref started) == 0) Finish(null);
        }
    }

    /// <summary>
    /// Reads the members of one server op, recording the first member whose
    /// type is wrong (null counts as absent, as in Go's decoder).
    /// </summary>
    internal sealed class OpReader
    {
        readonly JsonValue v;
        readonly OpReader parent; // the op's reader, for an object nested in it
        readonly string where;    // the nested object's place in the op

        public OpReader(JsonValue v)
        {
            this.v = v;
            if (v.Kind != JsonKind.Object)
            {
                Error = "an op that is not a JSON object";
                return;
            }
            var op = v["op"];
            if (op == null || op.Kind != JsonKind.String) Error = "an op without a string \"op\"";
            else Op = op.AsString;
        }

        /// <summary>The op's name; null when it has none.</summary>
        public string Op { get; }

        /// <summary>What was wrong, or null.</summary>
        public string Error { get; private set; }

        // A reader of an object nested in the op (a quote, an attachment, a
        // reaction, an unread count): its failures are the op's.
        OpReader(JsonValue v, OpReader parent, string where)
        {
            this.v = v;
            this.parent = parent;
            this.where = where;
            Op = parent.Op;
        }

        public void Fail(string what)
        {
            if (parent != null) parent.Fail(where + "." + what);
            else if (Error == null) Error = "a \"" + Op + "\" op whose " + what;
        }

        // Nested returns a reader of item (at where) when it is an object.
        OpReader Nested(JsonValue item, string where)
        {
            if (item.Kind == JsonKind.Object) return new OpReader(item, this, where);
            Fail(where + " is not an object");
            return null;
        }

        JsonValue Get(string name, JsonKind kind, string want)
        {
            var m = v[name];
            if (m == null || m.IsNull) return null;
            if (m.Kind != kind && !(kind == JsonKind.True && m.Kind == JsonKind.False))
            {
                Fail(name + " is not " + want);
                return null;
            }
            return m;
        }

        public string Str(string name)
        {
            var m = Get(name, JsonKind.String, "a string");
            return m == null ? null : m.AsString;
        }

        public long Long(string name)
        {
            var m = Get(name, JsonKind.Number, "an integer");
            if (m == null) return 0;
            long n;
            if (!m.TryGetInt64(out n))
            {
                Fail(name + " is not an integer");
                return 0;
            }
            return n;
        }

        /// <summary>A member that must be a non-negative integer (seq, prev).</summary>
        public long Seq(string name)
        {
            long n = Long(name);
            if (n < 0)
            {
                Fail(name + " is negative");
                return 0;
            }
            return n;
        }

        public bool Bool(string name)
        {
            var m = Get(name, JsonKind.True, "a boolean");
            return m != null && m.Kind == JsonKind.True;
        }

        public JsonValue Array(string name) { return Get(name, JsonKind.Array, "an array"); }

        public JsonValue Object(string name) { return Get(name, JsonKind.Object, "an object"); }

        /// <summary>A member of any JSON type, as raw text; null when absent or null.</summary>
        public string RawValue(string name)
        {
            var m = v[name];
            return m == null || m.IsNull ? null : m.Raw;
        }

        /// <summary>The error an "error" op carries (an empty code is internal).</summary>
        public KaiwaException ToException()
        {
            var c = v["code"];
            var m = v["message"];
            string code = c != null && c.Kind == JsonKind.String && c.AsString.Length > 0 ? c.AsString : ErrorCodes.Internal;
            string message = m != null && m.Kind == JsonKind.String ? m.AsString : "";
            return new KaiwaException(code, message);
        }

        /// <summary>A member that must be a non-empty string.</summary>
        public string Need(string name)
        {
            string s = Str(name);
            if (string.IsNullOrEmpty(s)) Fail(name + " is missing");
            return s;
        }

        /// <summary>Reads a "msg" op (or a message of a history or search reply).</summary>
        public Message ToMessage()
        {
            var m = new Message(Need("ch"), Str("id"), Seq("seq"), Seq("prev"), Str("from"), Str("name"), Str("text") ?? "", RawValue("data"), Long("ts"), Bool("system"));
            m.ReplyTo = Str("reply_to");
            m.Quote = ReadQuote("quote");
            m.Attachments = ReadAttachments("attachments");
            m.Reactions = ReadReactions("reactions");
            m.EditedAt = Long("edited_at");
            return m;
        }

        public Quote ReadQuote(string name)
        {
            var q = Object(name);
            if (q == null) return null;
            var r = new OpReader(q, this, name);
            return new Quote(r.Need("id"), r.Str("from"), r.Str("name"), r.Str("text") ?? "");
        }

        public IReadOnlyList<Attachment> ReadAttachments(string name)
        {
            var a = Array(name);
            if (a == null || a.Items.Count == 0) return Message.NoAttachments;
            var list = new List<Attachment>(a.Items.Count);
            for (int i = 0; i < a.Items.Count; i++)
            {
                var r = Nested(a.Items[i], name + "[" + i.ToString(CultureInfo.InvariantCulture) + "]");
                if (r == null) return Message.NoAttachments;
                string type = r.Need("type"), url = r.Need("url"), label = r.Str("name");
                long width = r.Seq("width"), height = r.Seq("height");
                if (width > int.MaxValue || height > int.MaxValue) r.Fail("width or height is too large");
                if (Error != null) return Message.NoAttachments;
                list.Add(new Attachment(type, url, (int)width, (int)height, label));
            }
            return list.AsReadOnly();
        }

        public IReadOnlyList<Reaction> ReadReactions(string name)
        {
            var a = Array(name);
            if (a == null || a.Items.Count == 0) return Message.NoReactions;
            var list = new List<Reaction>(a.Items.Count);
            for (int i = 0; i < a.Items.Count; i++)
            {
                var r = Nested(a.Items[i], name + "[" + i.ToString(CultureInfo.InvariantCulture) + "]");
                if (r == null) return Message.NoReactions;
                list.Add(new Reaction(r.Need("emoji"), r.Seq("count")));
            }
            return list.AsReadOnly();
        }

        /// <summary>An "unread" map (in "ready" and the unread reply): channel to {count, read, last}.</summary>
        public IReadOnlyDictionary<string, UnreadCount> ReadUnread(string name)
        {
            var counts = new Dictionary<string, UnreadCount>();
            var o = Object(name);
            if (o == null) return counts;
            foreach (var kv in o.Members)
            {
                var r = Nested(kv.Value, name + "." + kv.Key);
                if (r == null) break;
                counts[kv.Key] = new UnreadCount(r.Seq("count"), r.Seq("read"), r.Seq("last"));
            }
            return counts;
        }
    }
}
