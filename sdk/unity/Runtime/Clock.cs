using System;
using System.Diagnostics;

namespace Kaiwa
{
    /// <summary>
    /// The v2 frame clocks of one connection (docs/protocol.md §14.3): own
    /// clock in whole milliseconds since the connection opened (a monotonic
    /// Stopwatch), the peer's last clock and when it arrived, and the
    /// round-trip time measured from the peer's echoes. The reader records,
    /// writers stamp, concurrently: it locks itself.
    /// </summary>
    internal sealed class Clock
    {
        /// <summary>The largest value "t" or "e" may carry: 2^53−1.</summary>
        public const long MaxClock = (1L << 53) - 1;

        /// <summary>The longest round trip believed: an echo that implies more is not a measurement.</summary>
        public const long MaxRttMs = 10000;

        readonly Stopwatch sw = Stopwatch.StartNew();
        readonly object mu = new object();
        long peerT;
        TimeSpan at;
        bool have;
        bool sent;
        long firstT;
        long lastE;
        long rttMs;
        bool rttOk;

        static long Clamp(long ms)
        {
            if (ms < 0) return 0;
            return ms > MaxClock ? MaxClock : ms;
        }

        static long Millis(TimeSpan d) { return Clamp((long)Math.Floor(d.TotalMilliseconds)); }

        /// <summary>
        /// Notes a frame that arrived now with the peer's clock t and, when
        /// hasE, its echo e of this clock. An echo that cannot be right keeps
        /// the previous RTT: ahead of this clock, older than the first frame
        /// sent, behind an earlier echo, or implying more than MaxRttMs.
        /// </summary>
        public void Record(long t, long e, bool hasE)
        {
            TimeSpan now = sw.Elapsed;
            long own = Millis(now);
            lock (mu)
            {
                peerT = Clamp(t);
                at = now;
                have = true;
                if (!hasE || !sent || e > own || e < firstT || e < lastE || own - e > MaxRttMs) return;
                rttMs = own - e;
                rttOk = true;
                lastE = e;
            }
        }

        /// <summary>
        /// The clocks of a frame leaving now: t is this clock, e the peer's
        /// last t plus the whole milliseconds it was held; hasE is false until
        /// a frame from the peer was recorded.
        /// </summary>
        public void Stamp(out long t, out long e, out bool hasE)
        {
            TimeSpan now = sw.Elapsed;
            t = Millis(now);
            lock (mu)
            {
                if (!sent)
                {
                    sent = true;
                    firstT = t;
                }
                if (!have)
                {
                    e = 0;
                    hasE = false;
                    return;
                }
                long held = (long)Math.Floor((now - at).TotalMilliseconds);
                if (held < 0) held = 0;
                e = Clamp(peerT + held);
                hasE = true;
            }
        }

        /// <summary>The latest round-trip time; null until an echo was measured.</summary>
        public TimeSpan? Rtt
        {
            get
            {
                lock (mu)
                {
                    if (!rttOk) return null;
                    return TimeSpan.FromMilliseconds(rttMs);
                }
            }
        }
    }
}
