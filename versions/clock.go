package versions

import (
	"sync"
	"time"
)

// MaxClock is the largest value a v2 frame's "t" or "e" may carry: 2^53−1,
// the largest integer every JSON implementation reads exactly (about
// 285,000 years of milliseconds).
const MaxClock = 1<<53 - 1

// Clock keeps a session's frame clocks for versions that exchange them
// (v2): the time the connection opened, the peer's last clock and when it
// arrived, and the latest round-trip time.
//
// A frame's "t" is the sender's clock: whole milliseconds since the
// connection opened. Its "e" echoes the receiver's last "t" plus the whole
// milliseconds the sender held it before sending. So the receiver of a
// frame with an echo knows the round trip: its own clock now minus "e".
//
// The session's reader records what arrives ([Clock.Record]) and its writer
// stamps what leaves ([Clock.Stamp]), concurrently: a Clock is safe for
// concurrent use. Its zero value is not usable; see [NewClock]. Methods
// take the current time as an argument so that callers (and tests) decide
// when "now" is; [Codec.DecodeFrame] and [Codec.AppendFrame] pass
// time.Now().
type Clock struct {
	start time.Time // read-only after NewClock

	mu    sync.Mutex
	peerT int64         // the peer's last t; guarded by mu
	at    time.Time     // when peerT arrived; guarded by mu
	have  bool          // peerT is set; guarded by mu
	rtt   time.Duration // latest round-trip sample; guarded by mu
	rttOK bool          // rtt is set; guarded by mu

	sent   bool  // a frame has been stamped; guarded by mu
	firstT int64 // the t of the first frame stamped; guarded by mu
	lastE  int64 // the last echo taken as a measurement; guarded by mu
}

// NewClock returns a clock counting from start, the moment the connection
// opened.
func NewClock(start time.Time) *Clock { return &Clock{start: start} }

// Millis returns the clock's reading at now: whole milliseconds since the
// connection opened, 0 for a time before that, at most [MaxClock].
func (c *Clock) Millis(now time.Time) int64 {
	return clampClock(now.Sub(c.start).Milliseconds())
}

func clampClock(ms int64) int64 {
	switch {
	case ms < 0:
		return 0
	case ms > MaxClock:
		return MaxClock
	}
	return ms
}

// MaxRTT is the largest round-trip time a [Clock] believes: an echo that
// would make it longer is not a measurement. A session that takes this
// long to answer is closed by the ping timeout long before.
const MaxRTT = 10 * time.Second

// Record notes a frame that arrived at now carrying the peer's clock t and,
// when hasE, its echo e of this side's clock (t is kept within 0 and
// [MaxClock]). With an echo the round-trip time becomes this clock's
// reading at now minus e. An echo that cannot be right is not a
// measurement, and the previous round-trip time is kept: one ahead of this
// clock, one older than the first frame this side sent, one behind an
// earlier echo (an honest echo only grows: the peer echoes the latest
// frame it has, plus the time it held it), or one implying more than
// [MaxRTT] (such as a constant 0 on an old connection). A peer can still
// claim to have held a frame longer than it did; what it claims is bounded.
func (c *Clock) Record(now time.Time, t, e int64, hasE bool) {
	own := c.Millis(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peerT, c.at, c.have = clampClock(t), now, true
	if !hasE || !c.sent || e > own || e < c.firstT || e < c.lastE || own-e > MaxRTT.Milliseconds() {
		return
	}
	c.rtt, c.rttOK = time.Duration(own-e)*time.Millisecond, true
	c.lastE = e
}

// Stamp returns the clocks of a frame leaving at now: t is this clock's
// reading, e the peer's last t plus the whole milliseconds held since it
// arrived. hasE is false until a frame from the peer has been recorded:
// the frame then carries no "e".
func (c *Clock) Stamp(now time.Time) (t, e int64, hasE bool) {
	t = c.Millis(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sent {
		c.sent, c.firstT = true, t
	}
	if !c.have {
		return t, 0, false
	}
	held := now.Sub(c.at).Milliseconds()
	if held < 0 {
		held = 0
	}
	return t, clampClock(c.peerT + held), true
}

// RTT returns the latest round-trip time; ok is false until a frame with
// an echo has been recorded, and always for a nil Clock (a version without
// clocks).
func (c *Clock) RTT() (rtt time.Duration, ok bool) {
	if c == nil {
		return 0, false // a version without clocks
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rtt, c.rttOK
}
