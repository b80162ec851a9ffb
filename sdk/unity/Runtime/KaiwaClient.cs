using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;

namespace Kaiwa
{
    /// <summary>
    /// A connection to Kaiwa that survives disconnects: when its connection
    /// is lost, or the server asks it to reconnect, it dials again with
    /// backoff and full jitter, resumes every channel from the last sequence
    /// number it saw (v2) so that each missed message arrives once and in
    /// order, joins again the channels it joined, and resends requests that
    /// were in flight with the same client message id, so that no message is
    /// sent twice.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Threading: the client's work (reading, reconnecting) runs on
    /// background tasks, which never call game code. Events are queued and
    /// raised on the thread that calls <see cref="DispatchPending"/> (a
    /// MonoBehaviour's Update), or on <see cref="KaiwaOptions.SynchronizationContext"/>
    /// when one is given. Requests may be made from any thread; their tasks
    /// complete on the awaiting code's context (Unity's main thread when
    /// awaited there). Properties are safe to read from any thread.
    /// </para>
    /// <para>
    /// A client is one session: call <see cref="ConnectAsync"/> once. When it
    /// ends (<see cref="ClientState.Closed"/>), make a new client, with
    /// <see cref="KaiwaOptions.Resume"/> set from <see cref="LastSeqs"/> to
    /// carry on where it stopped.
    /// </para>
    /// </remarks>
    public sealed class KaiwaClient : IDisposable, IConnectionSink
    {
        readonly Uri uri;
        readonly bool v2;
        readonly KaiwaOptions opts;
        readonly EventQueue events;
        readonly CancellationTokenSource life = new CancellationTokenSource();

        // mu guards the fields below; it is never held while awaiting or
        // while calling out.
        readonly object mu = new object();
        readonly Random random = new Random();
        readonly Dictionary<string, long> seqs = new Dictionary<string, long>(); // the last seq seen per channel
        readonly Dictionary<string, long> pos = new Dictionary<string, long>();  // where a quiet channel stood when joined
        readonly HashSet<string> joined = new HashSet<string>();                 // channels joined with JoinAsync
        readonly Dictionary<string, long> changes = new Dictionary<string, long>(); // the last seq of an edit or reaction seen per channel
        Connection conn;                    // the current connection; null while there is none
        TaskCompletionSource<bool> ready = NewSignal(); // completed when conn is set or the client ends
        ClientState state = ClientState.Idle;
        Exception endError;                 // why the client ended
        bool disposed;
        string token;
        ReadyInfo lastReady;
        Exception lastDialError;
        Task runTask;
        Task closeTask;

        /// <summary>
        /// Makes a client for url, a Kaiwa WebSocket URL such as
        /// wss://chat.example.com/v2/ws (the path names the protocol version,
        /// v1 or v2). Nothing is sent before <see cref="ConnectAsync"/>.
        /// </summary>
        /// <exception cref="ArgumentException">The URL or the options are not usable.</exception>
        public KaiwaClient(string url, KaiwaOptions options)
        {
            if (url == null) throw new ArgumentNullException("url");
            if (options == null) throw new ArgumentNullException("options");
            Uri u;
            if (!Uri.TryCreate(url, UriKind.Absolute, out u) || (u.Scheme != "ws" && u.Scheme != "wss"))
            {
                throw new ArgumentException("the url must be ws:// or wss://", "url");
            }
            if (u.UserInfo.Length > 0 || u.Query.Length > 0)
            {
                throw new ArgumentException("the url must carry no user info and no query (tokens never travel in URLs)", "url");
            }
            string[] parts = u.AbsolutePath.TrimEnd('/').Split('/');
            if (parts.Length < 3 || parts[parts.Length - 1] != "ws" || (parts[parts.Length - 2] != "v1" && parts[parts.Length - 2] != "v2"))
            {
                throw new ArgumentException("the url path must end in /v1/ws or /v2/ws", "url");
            }
            opts = options.Clone();
            opts.Validate();
            uri = u;
            Version = parts[parts.Length - 2];
            v2 = Version != "v1";
            token = opts.Token;
            if (opts.Resume != null)
            {
                foreach (var kv in opts.Resume)
                {
                    if (kv.Value < 0) throw new ArgumentException("Resume holds a negative seq", "options");
                    seqs[kv.Key] = kv.Value;
                }
            }
            events = new EventQueue(opts.MaxPendingEvents, opts.SynchronizationContext);
        }

        // ---- events -------------------------------------------------------

        /// <summary>A chat or system message arrived (each once, in order per channel).</summary>
        public event Action<Message> MessageReceived;

        /// <summary>Another session joined or left a channel this client is in.</summary>
        public event Action<Presence> PresenceChanged;

        /// <summary>The client's state changed (connecting, connected, reconnecting, closed).</summary>
        public event Action<ClientState> StateChanged;

        /// <summary>
        /// (v2) A channel's missed messages were replayed after a reconnect:
        /// the channel, and whether every missed message was (false: the
        /// server's history no longer reached back; read history or show a gap).
        /// </summary>
        public event Action<string, bool> Resumed;

        /// <summary>(v2) Messages of a channel were missed and could not be replayed; raised before the message that shows it.</summary>
        public event Action<MessageGap> Gap;

        /// <summary>
        /// An error that answers no request: the server's (a channel that
        /// could not be joined again, a refused reconnect, the reason the
        /// client closed), or <see cref="ErrorCodes.BadFrame"/> for input the
        /// client could not read and skipped.
        /// </summary>
        public event Action<KaiwaError> ErrorReceived;

        /// <summary>The game server made the user a member of a channel; the client is now in it.</summary>
        public event Action<string> ChannelJoined;

        /// <summary>The client is no longer in a channel without having asked: the channel, and why ("removed", "channel deleted", "channel closed").</summary>
        public event Action<string, string> ChannelLeft;

        /// <summary>A message was deleted, by its author or a moderator: its channel and id. Remove it from view.</summary>
        public event Action<string, string> MessageDeleted;

        /// <summary>The author edited a message: show its new text (live, or replayed after a reconnect).</summary>
        public event Action<MessageEdit> MessageEdited;

        /// <summary>A user added or took back a reaction to a message; the change carries the message's counts after it.</summary>
        public event Action<ReactionChange> ReactionChanged;

        /// <summary>The user read a channel up to a seq, on this or another device: the channel and the seq (clear its unread count).</summary>
        public event Action<string, long> ReadCursorMoved;

        /// <summary>Another user is typing in a channel (or a direct channel) this client is in; Event is "typing". Never stored or replayed: show it for a few seconds.</summary>
        public event Action<Presence> Typing;

        // ---- properties ---------------------------------------------------

        /// <summary>The protocol version the URL names ("v1" or "v2").</summary>
        public string Version { get; }

        /// <summary>Where the client stands now (events may still be waiting for dispatch).</summary>
        public ClientState State
        {
            get
            {
                lock (mu) return state;
            }
        }

        /// <summary>
        /// The current connection's round-trip time (v2), measured from every
        /// frame the server sends; null while not connected, until measured,
        /// and in v1.
        /// </summary>
        public TimeSpan? Rtt
        {
            get
            {
                Connection c;
                lock (mu) c = conn;
                return c == null ? null : c.Rtt;
            }
        }

        /// <summary>
        /// (v2) The last seq seen per channel: what the client resumes from
        /// when it reconnects. A copy.
        /// </summary>
        public IReadOnlyDictionary<string, long> LastSeqs
        {
            get
            {
                lock (mu) return new Dictionary<string, long>(seqs);
            }
        }

        /// <summary>What the server reported when the latest connection became ready; null before.</summary>
        public ReadyInfo Ready
        {
            get
            {
                lock (mu) return lastReady;
            }
        }

        /// <summary>The number of events waiting for <see cref="DispatchPending"/>.</summary>
        public int PendingEvents { get { return events.Count; } }

        // ---- dispatch -----------------------------------------------------

        /// <summary>
        /// Raises, on the calling thread, the events that were waiting when it
        /// was called, in order, and returns how many. Call it once per frame
        /// from a MonoBehaviour's Update. An exception from a handler
        /// propagates; the events after it stay for the next call.
        /// </summary>
        public int DispatchPending()
        {
            return events.Drain();
        }

        // ---- connecting ---------------------------------------------------

        /// <summary>
        /// Connects and returns once the server has reported ready. Failed
        /// attempts are retried with backoff, within
        /// <see cref="KaiwaOptions.ConnectTimeout"/>; a token or version the
        /// server refuses for good fails at once. After that the client keeps
        /// itself connected until disposed.
        /// </summary>
        /// <exception cref="KaiwaException">The server refused the session (its code: unauthorized, token_expired, banned, version_not_allowed, ...).</exception>
        /// <exception cref="TimeoutException">No connection within ConnectTimeout.</exception>
        /// <exception cref="OperationCanceledException">cancellationToken was cancelled.</exception>
        /// <exception cref="InvalidOperationException">ConnectAsync was called before.</exception>
        public async Task ConnectAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            lock (mu)
            {
                if (disposed) throw new ObjectDisposedException("KaiwaClient");
                if (state != ClientState.Idle) throw new InvalidOperationException("ConnectAsync was called already: a KaiwaClient is one session");
                state = ClientState.Connecting;
            }
            EmitState(ClientState.Connecting);
            Connection c;
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, life.Token))
            {
                if (opts.ConnectTimeout != Timeout.InfiniteTimeSpan) cts.CancelAfter(opts.ConnectTimeout);
                try
                {
                    c = await DialAsync(cts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && !life.IsCancellationRequested)
                {
                    Exception last;
                    lock (mu) last = lastDialError;
                    var e = new TimeoutException("no connection within " + opts.ConnectTimeout + (last == null ? "" : " (the last attempt: " + last.Message + ")"));
                    End(e, false);
                    throw e;
                }
                catch (Exception e)
                {
                    End(e, false);
                    if (life.IsCancellationRequested) throw new ObjectDisposedException("KaiwaClient");
                    throw;
                }
            }
            if (!SetConn(c))
            {
                await c.CloseAsync().ConfigureAwait(false);
                throw new ObjectDisposedException("KaiwaClient");
            }
            runTask = Task.Run(() => RunAsync(c));
        }

        // DialAsync makes connections until one is ready, ct ends, or the
        // server refuses the session for good.
        async Task<Connection> DialAsync(CancellationToken ct)
        {
            int attempt = 0;
            while (true)
            {
                string tok;
                lock (mu) tok = token;
                if (string.IsNullOrEmpty(tok)) tok = await FreshTokenAsync(null, ct).ConfigureAwait(false);
                IDictionary<string, long> resume = v2 ? ResumeMap() : null;
                try
                {
                    using (var hs = CancellationTokenSource.CreateLinkedTokenSource(ct))
                    {
                        hs.CancelAfter(opts.HandshakeTimeout);
                        return await Connection.OpenAsync(uri, v2, tok, resume, opts, this, hs.Token).ConfigureAwait(false);
                    }
                }
                catch (KaiwaException e) when (!ct.IsCancellationRequested)
                {
                    switch (e.Code)
                    {
                        case ErrorCodes.Unauthorized:
                        case ErrorCodes.TokenExpired:
                            if (opts.GetToken == null) throw;
                            await FreshTokenAsync(e, ct).ConfigureAwait(false);
                            break;
                        case ErrorCodes.Banned:
                        case ErrorCodes.Forbidden:
                        case ErrorCodes.VersionNotAllowed:
                        case ErrorCodes.BadRequest:
                        case ErrorCodes.NotFound:
                            throw; // no retry can change it
                    }
                    lock (mu) lastDialError = e;
                }
                catch (Exception e)
                {
                    // The network, a close before ready, the handshake's time
                    // bound; or ct ended, whatever the attempt's own error.
                    if (!(e is OperationCanceledException)) lock (mu) lastDialError = e;
                }
                ct.ThrowIfCancellationRequested();
                await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
                attempt++;
            }
        }

        // FreshTokenAsync asks GetToken for a token (after the refusal
        // refused, when there was one) and keeps it.
        async Task<string> FreshTokenAsync(KaiwaException refused, CancellationToken ct)
        {
            string tok;
            string code = refused != null ? refused.Code : ErrorCodes.Unauthorized;
            string after = refused != null ? " (after " + refused.ServerMessage + ")" : "";
            try
            {
                tok = await CallGetToken(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (!(e is OperationCanceledException && ct.IsCancellationRequested))
            {
                throw new KaiwaException(code, "GetToken failed: " + e.Message + after);
            }
            if (string.IsNullOrEmpty(tok)) throw new KaiwaException(code, "GetToken gave no token" + after);
            lock (mu) token = tok;
            return tok;
        }

        // CallGetToken calls GetToken where events are raised (the game's
        // thread: it is game code, and may need the main thread, as a
        // UnityWebRequest does) and waits for its task.
        async Task<string> CallGetToken(CancellationToken ct)
        {
            var result = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            Emit(() =>
            {
                if (ct.IsCancellationRequested)
                {
                    result.TrySetCanceled();
                    return;
                }
                Task<string> t;
                try
                {
                    t = opts.GetToken(ct);
                }
                catch (Exception e)
                {
                    result.TrySetException(e);
                    return;
                }
                if (t == null)
                {
                    result.TrySetResult(null);
                    return;
                }
                t.ContinueWith(done =>
                {
                    if (done.IsFaulted) result.TrySetException(done.Exception.InnerException ?? done.Exception);
                    else if (done.IsCanceled) result.TrySetCanceled();
                    else result.TrySetResult(done.Result);
                }, TaskContinuationOptions.ExecuteSynchronously);
            });
            await WaitAsync(result.Task, ct).ConfigureAwait(false);
            return await result.Task.ConfigureAwait(false);
        }

        // ResumeMap names every channel with a seq seen, or, for a channel
        // quiet since it was joined, the position it was joined at. (A
        // channel with neither is joined again instead: resuming it from 0
        // would replay its whole history.)
        IDictionary<string, long> ResumeMap()
        {
            lock (mu)
            {
                var m = new SortedDictionary<string, long>(pos, StringComparer.Ordinal);
                foreach (var kv in seqs)
                {
                    if (kv.Value > 0) m[kv.Key] = kv.Value;
                }
                return m;
            }
        }

        // NotePosLocked records where ch stood when joined, unless a message
        // of it was seen. Call with mu held.
        void NotePosLocked(string ch, long seq)
        {
            if (!seqs.ContainsKey(ch)) pos[ch] = seq;
        }

        // Backoff is the full-jitter wait before attempt n+1: random between
        // 0 and MinBackoff·2ⁿ, at most MaxBackoff.
        internal TimeSpan Backoff(int n)
        {
            double ceil = opts.MinBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(n, 20));
            if (ceil > opts.MaxBackoff.TotalMilliseconds) ceil = opts.MaxBackoff.TotalMilliseconds;
            double r;
            lock (mu) r = random.NextDouble();
            return TimeSpan.FromMilliseconds(r * ceil);
        }

        // SetConn makes c the current connection and releases the requests
        // waiting for one; false when the client ended meanwhile.
        bool SetConn(Connection c)
        {
            TaskCompletionSource<bool> r;
            lock (mu)
            {
                if (state == ClientState.Closed) return false;
                foreach (var kv in c.Ready.Seqs) NotePosLocked(kv.Key, kv.Value);
                conn = c;
                lastReady = c.Ready;
                state = ClientState.Connected;
                r = ready;
            }
            r.TrySetResult(true);
            EmitState(ClientState.Connected);
            return true;
        }

        // Lose marks the connection gone: requests wait for the next.
        bool Lose()
        {
            lock (mu)
            {
                if (state == ClientState.Closed) return false;
                conn = null;
                if (ready.Task.IsCompleted) ready = NewSignal();
                state = ClientState.Reconnecting;
            }
            EmitState(ClientState.Reconnecting);
            return true;
        }

        // End closes the client with err (null: disposed). An error event
        // says why, unless the caller of ConnectAsync is told instead.
        void End(Exception err, bool report)
        {
            TaskCompletionSource<bool> r;
            lock (mu)
            {
                if (state == ClientState.Closed) return;
                state = ClientState.Closed;
                endError = err;
                conn = null;
                r = ready;
            }
            r.TrySetResult(true);
            events.Unbound();
            if (err != null && report)
            {
                var ke = err as KaiwaException;
                var e = ke != null ? new KaiwaError(ke.Code, ke.ServerMessage, null) : new KaiwaError(ErrorCodes.Unavailable, err.Message, null);
                EmitError(e);
            }
            EmitState(ClientState.Closed);
        }

        // RunAsync reconnects when a connection ends, until the client is
        // disposed or refused for good. A fault of its own (a bug) closes
        // the client, saying so, rather than leave it silently stalled.
        async Task RunAsync(Connection c)
        {
            try
            {
                await ReconnectLoopAsync(c).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                End(new KaiwaException(ErrorCodes.Internal, "the client failed: " + e), true);
            }
        }

        async Task ReconnectLoopAsync(Connection c)
        {
            while (true)
            {
                c.Start();
                Task rejoin = RejoinAsync(c);
                await c.Done.ConfigureAwait(false);
                await c.CloseAsync().ConfigureAwait(false);
                await rejoin.ConfigureAwait(false);
                if (life.IsCancellationRequested)
                {
                    End(null, false);
                    return;
                }
                Exception refused = RefusedForGood(c);
                if (refused != null)
                {
                    End(refused, true);
                    return;
                }
                if (!Lose()) return;
                int wait = c.ReconnectAfterMs;
                try
                {
                    // Not told when: a random part of the first backoff, so
                    // that the clients of a server that went away do not all
                    // come back at once.
                    if (wait <= 0) wait = (int)Backoff(0).TotalMilliseconds;
                    if (wait > 0) await Task.Delay(wait, life.Token).ConfigureAwait(false);
                    c = await DialAsync(life.Token).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    End(life.IsCancellationRequested ? null : e, true);
                    return;
                }
                if (!SetConn(c))
                {
                    await c.CloseAsync().ConfigureAwait(false);
                    return;
                }
            }
        }

        // RefusedForGood returns why the server closed c when the client
        // must not reconnect: kicked or banned (4003: the game server wants
        // the player out; the game decides when to come back), or a revoked
        // token (4001) without GetToken.
        Exception RefusedForGood(Connection c)
        {
            string reason = c.CloseReason;
            if (c.CloseCode == 4003)
                return new KaiwaException(ErrorCodes.Forbidden, string.IsNullOrEmpty(reason) ? "closed by the server (4003)" : reason);
            if (c.CloseCode != 4001 || opts.GetToken != null) return null;
            return new KaiwaException(ErrorCodes.Unauthorized, string.IsNullOrEmpty(reason) ? "closed by the server (4001)" : reason);
        }

        // RejoinAsync joins, on a new connection, the channels joined with
        // JoinAsync that it has not joined already (v1, or channels not
        // resumed). A channel that can no longer be joined is forgotten, and
        // reported.
        async Task RejoinAsync(Connection c)
        {
            List<string> want;
            lock (mu) want = new List<string>(joined);
            want.Sort(StringComparer.Ordinal);
            var have = new HashSet<string>(c.Ready.Channels);
            foreach (var ch in want)
            {
                if (have.Contains(ch)) continue;
                try
                {
                    using (var cts = CancellationTokenSource.CreateLinkedTokenSource(life.Token))
                    {
                        cts.CancelAfter(TimeSpan.FromSeconds(10));
                        var name = ch;
                        JsonValue reply = await c.RequestAsync("join", w => w.Member("ch", name), "ok", cts.Token).ConfigureAwait(false);
                        long seq;
                        if (JoinPosition(reply, out seq))
                        {
                            lock (mu) NotePosLocked(ch, seq);
                        }
                    }
                }
                catch (KaiwaException e) when (e.Code != ErrorCodes.Internal)
                {
                    lock (mu) joined.Remove(ch);
                    EmitError(new KaiwaError(e.Code, "rejoin " + ch + ": " + e.ServerMessage, ch));
                }
                catch (Exception)
                {
                    // The connection ended, or the server failed: the next
                    // connection tries again.
                }
            }
        }

        static bool JoinPosition(JsonValue reply, out long seq)
        {
            seq = 0;
            var s = reply["seq"];
            return s != null && s.TryGetInt64(out seq) && seq >= 0;
        }

        // ---- what the connection hands over ----------------------------------

        bool IConnectionSink.OnOp(Connection c, string op, JsonValue v)
        {
            var r = new OpReader(v);
            switch (op)
            {
                case "msg":
                    {
                        var m = r.ToMessage();
                        if (r.Error != null) break;
                        MessageGap gap;
                        if (!Seen(m, out gap)) return true;
                        if (gap != null) Emit(() => { var h = Gap; if (h != null) h(gap); });
                        Emit(() => { var h = MessageReceived; if (h != null) h(m); });
                        return true;
                    }
                case "presence":
                    {
                        var p = new Presence(r.Str("ch"), r.Str("user"), r.Str("name"), r.Str("event"));
                        if (r.Error != null) break;
                        Emit(() => { var h = PresenceChanged; if (h != null) h(p); });
                        return true;
                    }
                case "joined":
                    {
                        string ch = r.Str("ch");
                        if (r.Error != null) break;
                        Emit(() => { var h = ChannelJoined; if (h != null) h(ch); });
                        return true;
                    }
                case "left":
                    {
                        string ch = r.Str("ch"), reason = r.Str("reason");
                        if (r.Error != null) break;
                        // The game server took the user out: not joined again.
                        lock (mu) ForgetLocked(ch);
                        Emit(() => { var h = ChannelLeft; if (h != null) h(ch, reason); });
                        return true;
                    }
                case "deleted":
                    {
                        string ch = r.Str("ch"), id = r.Str("id");
                        if (r.Error != null) break;
                        Emit(() => { var h = MessageDeleted; if (h != null) h(ch, id); });
                        return true;
                    }
                case "edited":
                    {
                        var e = new MessageEdit(r.Need("ch"), r.Need("id"), r.Seq("seq"), r.Str("from"), r.Str("text") ?? "", r.Long("edited_at"));
                        if (r.Error != null) break;
                        if (NewChange(e.Channel, e.Seq)) Emit(() => { var h = MessageEdited; if (h != null) h(e); });
                        return true;
                    }
                case "reaction":
                    {
                        var rc = new ReactionChange(r.Need("ch"), r.Need("id"), r.Seq("seq"), r.Str("user"), r.Need("emoji"), r.Bool("added"), r.ReadReactions("reactions"));
                        if (r.Error != null) break;
                        if (NewChange(rc.Channel, rc.Seq)) Emit(() => { var h = ReactionChanged; if (h != null) h(rc); });
                        return true;
                    }
                case "read":
                    {
                        string ch = r.Need("ch");
                        long seq = r.Seq("seq");
                        if (seq == 0) r.Fail("seq is missing");
                        if (r.Error != null) break;
                        Emit(() => { var h = ReadCursorMoved; if (h != null) h(ch, seq); });
                        return true;
                    }
                case "typing":
                    {
                        var p = new Presence(r.Need("ch"), r.Need("user"), r.Str("name"), "typing");
                        if (r.Error != null) break;
                        Emit(() => { var h = Typing; if (h != null) h(p); });
                        return true;
                    }
                case "resumed":
                    {
                        string ch = r.Str("ch");
                        bool recovered = r.Bool("recovered");
                        if (r.Error != null) break;
                        Emit(() => { var h = Resumed; if (h != null) h(ch, recovered); });
                        return true;
                    }
                case "reconnect":
                    {
                        long after = r.Long("after_ms");
                        if (r.Error != null) EmitError(new KaiwaError(ErrorCodes.BadFrame, r.Error, null));
                        c.NoteReconnect(after);
                        return false; // the connection is closed and dialed again
                    }
                case "error":
                    {
                        var e = r.ToException();
                        EmitError(new KaiwaError(e.Code, e.ServerMessage, null));
                        return true;
                    }
                default:
                    // closing (the connection noted it), a reply nobody waits
                    // for, or an op of a newer server: ignored.
                    return true;
            }
            EmitError(new KaiwaError(ErrorCodes.BadFrame, r.Error, null));
            return true;
        }

        void IConnectionSink.OnBadFrame(Connection c, string message)
        {
            EmitError(new KaiwaError(ErrorCodes.BadFrame, message, null));
        }

        Task IConnectionSink.Room() { return events.Room(); }

        // Seen notes a message's seq and reports whether it is new. A message
        // whose prev is after the last seq seen in its channel follows a gap
        // the server could not replay.
        bool Seen(Message m, out MessageGap gap)
        {
            gap = null;
            if (m.Seq == 0) return true; // v1: nothing to compare
            long last;
            bool had;
            lock (mu)
            {
                had = seqs.TryGetValue(m.Channel, out last);
                if (had && m.Seq <= last) return false;
                seqs[m.Channel] = m.Seq;
                pos.Remove(m.Channel);
            }
            if (had && last > 0 && m.Prev > last) gap = new MessageGap(m.Channel, last, m.Seq);
            return true;
        }

        // NewChange notes an edit's or a reaction's seq and reports whether it
        // is new: a resume replays the changes after the last message seen,
        // some of which may have come live already. Changes do not move
        // LastSeqs: a message held back by the server may still come before.
        bool NewChange(string ch, long seq)
        {
            if (seq == 0) return true; // v1: nothing to compare
            lock (mu)
            {
                long last;
                if (changes.TryGetValue(ch, out last) && seq <= last) return false;
                changes[ch] = seq;
            }
            return true;
        }

        // ForgetLocked drops what the client keeps of a channel it left. Call
        // with mu held.
        void ForgetLocked(string ch)
        {
            joined.Remove(ch);
            seqs.Remove(ch);
            pos.Remove(ch);
            changes.Remove(ch);
        }

        void Emit(Action a) { events.Add(a); }

        void EmitState(ClientState s) { Emit(() => { var h = StateChanged; if (h != null) h(s); }); }

        void EmitError(KaiwaError e) { Emit(() => { var h = ErrorReceived; if (h != null) h(e); }); }

        // ---- requests -----------------------------------------------------

        // CurrentAsync waits for a ready connection.
        async Task<Connection> CurrentAsync(CancellationToken ct)
        {
            while (true)
            {
                Task wait;
                lock (mu)
                {
                    if (state == ClientState.Closed) throw EndException();
                    if (state == ClientState.Idle) throw new InvalidOperationException("call ConnectAsync first");
                    if (conn != null) return conn;
                    wait = ready.Task;
                }
                await WaitAsync(wait, ct).ConfigureAwait(false);
            }
        }

        Exception EndException()
        {
            if (disposed) return new ObjectDisposedException("KaiwaClient");
            var ke = endError as KaiwaException;
            if (ke != null) return new KaiwaException(ke.Code, ke.ServerMessage);
            return new InvalidOperationException("the client is closed" + (endError == null ? "" : ": " + endError.Message));
        }

        static async Task WaitAsync(Task t, CancellationToken ct)
        {
            if (!t.IsCompleted)
            {
                var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                using (ct.Register(() => cancelled.TrySetResult(true)))
                {
                    await Task.WhenAny(t, cancelled.Task).ConfigureAwait(false);
                }
            }
            ct.ThrowIfCancellationRequested();
        }

        // DoAsync runs a request on the current connection, and again on the
        // next one when the connection ended before the answer (or the
        // server could not tell the outcome): requests that change something
        // carry a client message id, so running them again never does it
        // twice. RequestTimeout bounds it all.
        async Task<JsonValue> DoAsync(string what, Func<Connection, CancellationToken, Task<JsonValue>> f, CancellationToken ct)
        {
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                if (opts.RequestTimeout != Timeout.InfiniteTimeSpan) cts.CancelAfter(opts.RequestTimeout);
                try
                {
                    while (true)
                    {
                        Connection c = await CurrentAsync(cts.Token).ConfigureAwait(false);
                        try
                        {
                            return await f(c, cts.Token).ConfigureAwait(false);
                        }
                        catch (Exception e) when (!cts.IsCancellationRequested && Retryable(c, e))
                        {
                        }
                        // Let the connection's end be noticed before trying again.
                        await WaitAsync(Task.WhenAny(c.Done, Task.Delay(100, cts.Token)), cts.Token).ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (cts.IsCancellationRequested && (e is OperationCanceledException || e is ConnectionLostException))
                {
                    ct.ThrowIfCancellationRequested();
                    throw new TimeoutException(what + " got no answer within " + opts.RequestTimeout);
                }
            }
        }

        static bool Retryable(Connection c, Exception e)
        {
            if (e is ConnectionLostException || c.IsDone) return true;
            var ke = e as KaiwaException;
            return ke != null && ke.Code == ErrorCodes.Unavailable;
        }

        static void CheckName(string value, string name)
        {
            if (string.IsNullOrEmpty(value)) throw new ArgumentException(name + " must not be empty", name);
        }

        static void CheckData(string data)
        {
            if (!string.IsNullOrEmpty(data) && !JsonValue.IsValid(data)) throw new ArgumentException("data must be JSON text (an object)", "data");
        }

        /// <summary>
        /// Joins a channel, now and after every reconnect (until
        /// <see cref="LeaveAsync"/>).
        /// </summary>
        /// <exception cref="KaiwaException">The server refused: forbidden, not_found, too_large, ...</exception>
        /// <exception cref="TimeoutException">No answer within <see cref="KaiwaOptions.RequestTimeout"/>.</exception>
        public async Task JoinAsync(string channel, CancellationToken cancellationToken = default(CancellationToken))
        {
            CheckName(channel, "channel");
            JsonValue reply = await DoAsync("join", (c, ct) => c.RequestAsync("join", w => w.Member("ch", channel), "ok", ct), cancellationToken).ConfigureAwait(false);
            long seq;
            bool known = JoinPosition(reply, out seq);
            lock (mu)
            {
                joined.Add(channel);
                if (known) NotePosLocked(channel, seq);
            }
        }

        /// <summary>Leaves a channel; it is not joined again after a reconnect.</summary>
        public async Task LeaveAsync(string channel, CancellationToken cancellationToken = default(CancellationToken))
        {
            CheckName(channel, "channel");
            lock (mu) ForgetLocked(channel);
            await DoAsync("leave", (c, ct) => c.RequestAsync("leave", w => w.Member("ch", channel), "ok", ct), cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// Sends a message to a joined channel and returns its id and seq (0 in
        /// v1). data, when given, is a JSON object's text, relayed as it is. A
        /// send interrupted by a disconnect is sent again on the next
        /// connection with the same client message id (cid; a fresh one
        /// unless given), so it is delivered once.
        /// </summary>
        /// <exception cref="KaiwaException">The server refused: not_joined, forbidden, too_large, ng_word, muted, rate_limited, ...</exception>
        /// <exception cref="TimeoutException">No answer within <see cref="KaiwaOptions.RequestTimeout"/>.</exception>
        public Task<SendResult> SayAsync(string channel, string text, string data = null, string cid = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            return SayAsync(channel, text, new SayOptions { Data = data, Cid = cid }, cancellationToken);
        }

        /// <summary>
        /// Sends a message to a joined channel with what options carry: data,
        /// a client message id, the message it replies to (the delivered
        /// message quotes it) and attachments.
        /// </summary>
        /// <exception cref="KaiwaException">The server refused: as <see cref="SayAsync(string, string, string, string, CancellationToken)"/>, and bad_request for a reply to a message of another channel or an attachment it does not take.</exception>
        public async Task<SendResult> SayAsync(string channel, string text, SayOptions options, CancellationToken cancellationToken = default(CancellationToken))
        {
            CheckName(channel, "channel");
            var o = Content(options);
            JsonValue reply = await DoAsync("say", (c, ct) => c.RequestAsync("say", w =>
            {
                w.Member("ch", channel);
                WriteContent(w, text, o);
            }, "ok", ct), cancellationToken).ConfigureAwait(false);
            var r = new OpReader(reply);
            string id = r.Str("id");
            long seq = r.Seq("seq");
            if (r.Error != null) throw new KaiwaException(ErrorCodes.BadFrame, r.Error);
            return new SendResult(id, seq, channel);
        }

        /// <summary>
        /// Sends a direct message to another user of the game, as
        /// <see cref="SayAsync(string, string, string, string, CancellationToken)"/> does; the result names the direct channel
        /// ("dm:" and the two user ids sorted).
        /// </summary>
        /// <exception cref="KaiwaException">The server refused: as SayAsync, and blocked when the user blocks the sender.</exception>
        public Task<SendResult> DmAsync(string to, string text, string data = null, string cid = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            return DmAsync(to, text, new SayOptions { Data = data, Cid = cid }, cancellationToken);
        }

        /// <summary>A direct message with what options carry, as <see cref="SayAsync(string, string, SayOptions, CancellationToken)"/>.</summary>
        public async Task<SendResult> DmAsync(string to, string text, SayOptions options, CancellationToken cancellationToken = default(CancellationToken))
        {
            CheckName(to, "to");
            var o = Content(options);
            JsonValue reply = await DoAsync("dm", (c, ct) => c.RequestAsync("dm", w =>
            {
                w.Member("to", to);
                WriteContent(w, text, o);
            }, "ok", ct), cancellationToken).ConfigureAwait(false);
            var r = new OpReader(reply);
            string id = r.Str("id"), ch = r.Str("ch");
            long seq = r.Seq("seq");
            if (r.Error != null) throw new KaiwaException(ErrorCodes.BadFrame, r.Error);
            return new SendResult(id, seq, ch);
        }

        // Content checks a send's options and returns a copy of them with a
        // client message id (the caller's, or a fresh one), which every
        // resend of the send carries.
        static SayOptions Content(SayOptions options)
        {
            var o = new SayOptions();
            if (options != null)
            {
                CheckData(options.Data);
                o.Data = options.Data;
                o.Cid = options.Cid;
                o.ReplyTo = options.ReplyTo;
                if (options.Attachments != null)
                {
                    var list = new List<Attachment>(options.Attachments);
                    if (list.Contains(null)) throw new ArgumentException("Attachments holds a null", "options");
                    o.Attachments = list;
                }
            }
            if (o.Cid == null) o.Cid = NewCid();
            return o;
        }

        static void WriteContent(JsonWriter w, string text, SayOptions o)
        {
            if (!string.IsNullOrEmpty(text)) w.Member("text", text);
            if (!string.IsNullOrEmpty(o.Cid)) w.Member("cid", o.Cid);
            if (!string.IsNullOrEmpty(o.ReplyTo)) w.Member("reply_to", o.ReplyTo);
            if (o.Attachments != null && o.Attachments.Count > 0)
            {
                w.Name("attachments").BeginArray();
                foreach (var a in o.Attachments) a.Write(w);
                w.EndArray();
            }
            if (!string.IsNullOrEmpty(o.Data)) w.Name("data").Raw(o.Data);
        }

        /// <summary>
        /// Reads up to limit messages of a channel (0: the server's default,
        /// 50; at most 100) before the message with id before (null: the
        /// newest), oldest first.
        /// </summary>
        public async Task<IReadOnlyList<Message>> HistoryAsync(string channel, int limit = 0, string before = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            CheckName(channel, "channel");
            JsonValue reply = await DoAsync("history", (c, ct) => c.RequestAsync("history", w =>
            {
                w.Member("ch", channel);
                if (limit != 0) w.Member("limit", limit);
                if (!string.IsNullOrEmpty(before)) w.Member("before", before);
            }, "history", ct), cancellationToken).ConfigureAwait(false);
            var r = new OpReader(reply);
            var list = ReadMessages(r, "history");
            if (r.Error != null) throw new KaiwaException(ErrorCodes.BadFrame, r.Error);
            return list;
        }

        /// <summary>Asks the server for a pong (and, in v2, refreshes <see cref="Rtt"/>).</summary>
        public async Task PingAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            await DoAsync("ping", (c, ct) => c.RequestAsync("ping", null, "pong", ct), cancellationToken).ConfigureAwait(false);
        }

        // ---- what players do (docs/protocol.md §15) --------------------------

        /// <summary>
        /// Replaces the text of the user's own message id of channel (within
        /// the game's edit window, 15 minutes by default); everyone in the
        /// channel gets <see cref="MessageEdited"/>. Returns the edit's seq
        /// (0 in v1).
        /// </summary>
        /// <exception cref="KaiwaException">The server refused: forbidden (not the author, or past the window), not_found, too_large, ng_word, muted, ...</exception>
        public async Task<long> EditAsync(string channel, string id, string text, CancellationToken cancellationToken = default(CancellationToken))
        {
            CheckName(channel, "channel");
            CheckName(id, "id");
            if (text == null) throw new ArgumentNullException("text");
            JsonValue reply = await DoAsync("edit", (c, ct) => c.RequestAsync("edit", w => w.Member("ch", channel).Member("id", id).Member("text", text), "ok", ct), cancellationToken).ConfigureAwait(false);
            return SeqOf(reply);
        }

        /// <summary>
        /// Deletes the user's own message id of channel (within the edit
        /// window); everyone in the channel gets <see cref="MessageDeleted"/>.
        /// A delete sent again after a lost answer may find it gone: not_found.
        /// </summary>
        public async Task DeleteAsync(string channel, string id, CancellationToken cancellationToken = default(CancellationToken))
        {
            CheckName(channel, "channel");
            CheckName(id, "id");
            await DoAsync("delete", (c, ct) => c.RequestAsync("delete", w => w.Member("ch", channel).Member("id", id), "ok", ct), cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// Adds the user's reaction emoji (at most 8 characters, or one of the
        /// game's list) to message id of channel; a user has one of each
        /// emoji on a message, so reacting again changes nothing. Everyone in
        /// the channel gets <see cref="ReactionChanged"/> with the counts.
        /// </summary>
        /// <exception cref="KaiwaException">The server refused: bad_request or too_large for an emoji it does not take, too_large past 20 kinds on a message, not_found, ...</exception>
        public Task ReactAsync(string channel, string id, string emoji, CancellationToken cancellationToken = default(CancellationToken))
        {
            return ReactionAsync("react", channel, id, emoji, cancellationToken);
        }

        /// <summary>Takes back the user's reaction emoji on message id of channel (nothing changes when there was none).</summary>
        public Task UnreactAsync(string channel, string id, string emoji, CancellationToken cancellationToken = default(CancellationToken))
        {
            return ReactionAsync("unreact", channel, id, emoji, cancellationToken);
        }

        async Task ReactionAsync(string op, string channel, string id, string emoji, CancellationToken cancellationToken)
        {
            CheckName(channel, "channel");
            CheckName(id, "id");
            CheckName(emoji, "emoji");
            await DoAsync(op, (c, ct) => c.RequestAsync(op, w => w.Member("ch", channel).Member("id", id).Member("emoji", emoji), "ok", ct), cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// Marks channel read up to seq (a message's <see cref="Message.Seq"/>,
        /// or <see cref="UnreadCount.Last"/>); every session of the user, on
        /// every device, gets <see cref="ReadCursorMoved"/>. Returns the
        /// cursor, which never moves back.
        /// </summary>
        /// <exception cref="KaiwaException">The server refused: bad_request for a seq past the channel's newest, not_joined, ...</exception>
        public async Task<long> MarkReadAsync(string channel, long seq, CancellationToken cancellationToken = default(CancellationToken))
        {
            CheckName(channel, "channel");
            if (seq <= 0) throw new ArgumentOutOfRangeException("seq", "a seq is positive");
            JsonValue reply = await DoAsync("read", (c, ct) => c.RequestAsync("read", w => w.Member("ch", channel).Member("seq", seq), "ok", ct), cancellationToken).ConfigureAwait(false);
            long cursor = SeqOf(reply);
            return cursor != 0 ? cursor : seq;
        }

        /// <summary>
        /// The unread counts of channel, or of every joined channel when it is
        /// null: the messages of others after the user's read cursor (at most
        /// 999). Counts come from the message log, which follows the chat by a
        /// moment.
        /// </summary>
        public async Task<IReadOnlyDictionary<string, UnreadCount>> UnreadAsync(string channel = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            JsonValue reply = await DoAsync("unread", (c, ct) => c.RequestAsync("unread", w =>
            {
                if (!string.IsNullOrEmpty(channel)) w.Member("ch", channel);
            }, "unread", ct), cancellationToken).ConfigureAwait(false);
            var r = new OpReader(reply);
            var counts = r.ReadUnread("unread");
            if (r.Error != null) throw new KaiwaException(ErrorCodes.BadFrame, r.Error);
            return counts;
        }

        /// <summary>
        /// Blocks user: their messages are no longer delivered to this user
        /// (live, replayed, in history and search), their presence and typing
        /// are not shown, and their direct messages to this user are refused
        /// (<see cref="ErrorCodes.Blocked"/>). The user's other sessions apply
        /// it at once.
        /// </summary>
        /// <exception cref="KaiwaException">The server refused: bad_request for the user themselves, too_large past 1000 blocks.</exception>
        public Task BlockAsync(string user, CancellationToken cancellationToken = default(CancellationToken))
        {
            return BlockingAsync("block", user, cancellationToken);
        }

        /// <summary>Ends a <see cref="BlockAsync"/>.</summary>
        public Task UnblockAsync(string user, CancellationToken cancellationToken = default(CancellationToken))
        {
            return BlockingAsync("unblock", user, cancellationToken);
        }

        async Task BlockingAsync(string op, string user, CancellationToken cancellationToken)
        {
            CheckName(user, "user");
            await DoAsync(op, (c, ct) => c.RequestAsync(op, w => w.Member("user", user), "ok", ct), cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// Tells the channel's other members (in a direct channel, "dm:a:b",
        /// the other user) that the user is typing: call it every few seconds
        /// while the user types. The server passes it on at
        /// most once per two seconds, and never stores it.
        /// </summary>
        public async Task TypingAsync(string channel, CancellationToken cancellationToken = default(CancellationToken))
        {
            CheckName(channel, "channel");
            await DoAsync("typing", (c, ct) => c.RequestAsync("typing", w => w.Member("ch", channel), "ok", ct), cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// Finds messages holding q (2 to 100 characters; case, full and half
        /// width, katakana and hiragana folded) in channel, or in every joined
        /// channel when it is null, newest first: up to limit (0: 50, at most
        /// 100) before the message with id before (a page's
        /// <see cref="SearchPage.Next"/>). Messages are found about a second
        /// after they were sent.
        /// </summary>
        /// <exception cref="KaiwaException">The server refused: bad_request for a q too short, too_large for one too long, not_joined.</exception>
        public async Task<SearchPage> SearchAsync(string q, string channel = null, int limit = 0, string before = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            CheckName(q, "q");
            JsonValue reply = await DoAsync("search", (c, ct) => c.RequestAsync("search", w =>
            {
                w.Member("q", q);
                if (!string.IsNullOrEmpty(channel)) w.Member("ch", channel);
                if (limit != 0) w.Member("limit", limit);
                if (!string.IsNullOrEmpty(before)) w.Member("before", before);
            }, "search", ct), cancellationToken).ConfigureAwait(false);
            var r = new OpReader(reply);
            var msgs = ReadMessages(r, "search");
            string next = r.Str("next");
            if (r.Error != null) throw new KaiwaException(ErrorCodes.BadFrame, r.Error);
            return new SearchPage(msgs, string.IsNullOrEmpty(next) ? null : next);
        }

        // SeqOf returns the seq a reply carries (0 when none).
        static long SeqOf(JsonValue reply)
        {
            var r = new OpReader(reply);
            long seq = r.Seq("seq");
            if (r.Error != null) throw new KaiwaException(ErrorCodes.BadFrame, r.Error);
            return seq;
        }

        // ReadMessages reads the messages of a history or search reply.
        static IReadOnlyList<Message> ReadMessages(OpReader r, string what)
        {
            var list = new List<Message>();
            var msgs = r.Array("messages");
            if (msgs != null)
            {
                foreach (var v in msgs.Items)
                {
                    var mr = new OpReader(v);
                    var m = mr.ToMessage();
                    if (mr.Error != null) throw new KaiwaException(ErrorCodes.BadFrame, what + ": " + mr.Error);
                    list.Add(m);
                }
            }
            return list.AsReadOnly();
        }

        /// <summary>A fresh random client message id: 22 characters of base64url.</summary>
        public static string NewCid()
        {
            var b = new byte[16];
            using (var rng = RandomNumberGenerator.Create()) rng.GetBytes(b);
            return Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        }

        static TaskCompletionSource<bool> NewSignal()
        {
            return new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        // ---- closing ------------------------------------------------------

        /// <summary>
        /// Ends the client: requests fail with <see cref="ObjectDisposedException"/>,
        /// the connection is closed (normally, when that takes under a
        /// second), and a last <see cref="StateChanged"/> (Closed) waits for
        /// dispatch. It does not block.
        /// </summary>
        public void Dispose()
        {
            Connection c;
            lock (mu)
            {
                if (disposed) return;
                disposed = true;
                c = conn;
            }
            life.Cancel();
            End(null, false);
            if (c != null) closeTask = c.CloseAsync();
        }

        /// <summary><see cref="Dispose"/>, then waits until the connection is closed.</summary>
        public async Task CloseAsync()
        {
            Dispose();
            Task t = closeTask, run = runTask;
            if (t != null) await t.ConfigureAwait(false);
            if (run != null) await run.ConfigureAwait(false);
        }
    }
}
