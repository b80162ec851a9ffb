using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Kaiwa
{
    /// <summary>
    /// Options of a <see cref="KaiwaClient"/>. Every property has a default
    /// that suits a game client; set what you need before passing it to the
    /// client, which takes a copy.
    /// </summary>
    public sealed class KaiwaOptions
    {
        /// <summary>The default of <see cref="MinBackoff"/>: 250 ms.</summary>
        public static readonly TimeSpan DefaultMinBackoff = TimeSpan.FromMilliseconds(250);
        /// <summary>The default of <see cref="MaxBackoff"/>: 30 s.</summary>
        public static readonly TimeSpan DefaultMaxBackoff = TimeSpan.FromSeconds(30);
        /// <summary>The default of <see cref="RequestTimeout"/>: 10 s.</summary>
        public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(10);
        /// <summary>The default of <see cref="ConnectTimeout"/>: 30 s.</summary>
        public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(30);
        /// <summary>The default of <see cref="HandshakeTimeout"/>: 10 s.</summary>
        public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(10);
        /// <summary>The default of <see cref="MaxPendingEvents"/>.</summary>
        public const int DefaultMaxPendingEvents = 10000;
        /// <summary>The default of <see cref="ReadLimit"/>: 4 MiB, above the largest frame a server sends (a history of 100 messages of maximal size).</summary>
        public const int DefaultReadLimit = 4 << 20;
        /// <summary>The default of <see cref="MaxFrame"/>: 16 KiB, the server's limit for a client frame.</summary>
        public const int DefaultMaxFrame = 16 << 10;

        /// <summary>
        /// The user token the game server obtained from Kaiwa's API. It is sent
        /// in the first frame of every connection (never in the URL). May be
        /// null when <see cref="GetToken"/> is set: the first token is then
        /// asked from it.
        /// </summary>
        public string Token { get; set; }

        /// <summary>
        /// Asked for a fresh token when the server refuses the current one
        /// (expired or revoked), before the next attempt. It is called where
        /// events are raised (in <see cref="KaiwaClient.DispatchPending"/>, or
        /// on <see cref="SynchronizationContext"/>), so it may use the main
        /// thread, for example to ask the game server with a UnityWebRequest;
        /// the client waits for its task. A failure (or no token) ends the
        /// client with the server's code. Without it, a refused token ends
        /// the client (<see cref="ClientState.Closed"/>, with the server's code
        /// in <see cref="KaiwaClient.ErrorReceived"/>). Default null.
        /// </summary>
        public Func<CancellationToken, Task<string>> GetToken { get; set; }

        /// <summary>
        /// The shortest backoff between connection attempts. The wait before
        /// attempt n+1 is random between 0 and MinBackoff·2ⁿ, at most
        /// <see cref="MaxBackoff"/> ("full jitter"), so that many clients do not
        /// come back at once. A server's "reconnect" (or closing notice) with a
        /// delay is honoured instead. Default 250 ms.
        /// </summary>
        public TimeSpan MinBackoff { get; set; } = DefaultMinBackoff;

        /// <summary>The longest backoff between connection attempts. Default 30 s.</summary>
        public TimeSpan MaxBackoff { get; set; } = DefaultMaxBackoff;

        /// <summary>
        /// How long a request may take, waiting for a connection and resends
        /// included, before it fails with a <see cref="TimeoutException"/>.
        /// <see cref="Timeout.InfiniteTimeSpan"/>: no bound but the request's
        /// CancellationToken. Default 10 s.
        /// </summary>
        public TimeSpan RequestTimeout { get; set; } = DefaultRequestTimeout;

        /// <summary>
        /// How long <see cref="KaiwaClient.ConnectAsync"/> keeps trying (with
        /// backoff) before it fails with a <see cref="TimeoutException"/>.
        /// <see cref="Timeout.InfiniteTimeSpan"/>: until its CancellationToken
        /// ends. Reconnects after that are not bounded: they go on until the
        /// client is disposed or refused. Default 30 s.
        /// </summary>
        public TimeSpan ConnectTimeout { get; set; } = DefaultConnectTimeout;

        /// <summary>How long one connection attempt may take, from dialing to "ready". Default 10 s.</summary>
        public TimeSpan HandshakeTimeout { get; set; } = DefaultHandshakeTimeout;

        /// <summary>
        /// (v2) The last seq seen per channel, to resume from on the first
        /// connection: usually <see cref="KaiwaClient.LastSeqs"/> of a previous
        /// client. Default none.
        /// </summary>
        public IDictionary<string, long> Resume { get; set; }

        /// <summary>
        /// When set, events are delivered by posting to this context (Unity's
        /// main thread: <c>SynchronizationContext.Current</c> read in Start or
        /// Awake), and <see cref="KaiwaClient.DispatchPending"/> need not be
        /// called. Default null: events wait for DispatchPending.
        /// </summary>
        public SynchronizationContext SynchronizationContext { get; set; }

        /// <summary>
        /// The most events that wait for dispatch. When this many wait, the
        /// client stops reading from the server until some are dispatched (as
        /// the server drops a client that reads nothing for long, a game that
        /// stalls longer is reconnected and resumed). Default 10000.
        /// </summary>
        public int MaxPendingEvents { get; set; } = DefaultMaxPendingEvents;

        /// <summary>
        /// The largest server frame read, in bytes; a larger one is skipped and
        /// reported as <see cref="ErrorCodes.BadFrame"/>. Default 4 MiB.
        /// </summary>
        public int ReadLimit { get; set; } = DefaultReadLimit;

        /// <summary>
        /// The largest request frame, in bytes: a larger request fails with
        /// <see cref="ErrorCodes.TooLarge"/> without being sent (the server
        /// would refuse it without saying which request it was). Default 16 KiB.
        /// </summary>
        public int MaxFrame { get; set; } = DefaultMaxFrame;

        internal KaiwaOptions Clone()
        {
            var o = (KaiwaOptions)MemberwiseClone();
            if (Resume != null) o.Resume = new Dictionary<string, long>(Resume);
            return o;
        }

        internal void Validate()
        {
            if (MinBackoff <= TimeSpan.Zero) throw new ArgumentException("MinBackoff must be positive");
            if (MaxBackoff < MinBackoff) throw new ArgumentException("MaxBackoff must be at least MinBackoff");
            if (RequestTimeout <= TimeSpan.Zero && RequestTimeout != Timeout.InfiniteTimeSpan) throw new ArgumentException("RequestTimeout must be positive or infinite");
            if (ConnectTimeout <= TimeSpan.Zero && ConnectTimeout != Timeout.InfiniteTimeSpan) throw new ArgumentException("ConnectTimeout must be positive or infinite");
            if (HandshakeTimeout <= TimeSpan.Zero) throw new ArgumentException("HandshakeTimeout must be positive");
            if (MaxPendingEvents < 1) throw new ArgumentException("MaxPendingEvents must be at least 1");
            if (ReadLimit < 1024) throw new ArgumentException("ReadLimit must be at least 1024");
            if (MaxFrame < 1024) throw new ArgumentException("MaxFrame must be at least 1024");
            if (string.IsNullOrEmpty(Token) && GetToken == null) throw new ArgumentException("a Token or GetToken is needed");
        }
    }
}
