package versions

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func TestClockMillis(t *testing.T) {
	c := NewClock(t0)
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{t0, 0},
		{t0.Add(-time.Second), 0},
		{t0.Add(999 * time.Microsecond), 0},
		{t0.Add(time.Millisecond), 1},
		{t0.Add(ms(1500) + 999*time.Microsecond), 1500},
		{t0.Add(3 * time.Hour), 3 * 3600 * 1000},
	} {
		if got := c.Millis(tc.at); got != tc.want {
			t.Errorf("Millis(start%+v) = %d, want %d", tc.at.Sub(t0), got, tc.want)
		}
	}
}

func TestClockStampAndRecord(t *testing.T) {
	c := NewClock(t0)
	if _, ok := c.RTT(); ok {
		t.Fatal("RTT known before any frame")
	}
	if tt, e, hasE := c.Stamp(t0.Add(ms(20))); tt != 20 || e != 0 || hasE {
		t.Fatalf("first Stamp = %d, %d, %v; want t 20 and no e", tt, e, hasE)
	}

	// The peer's frame (its clock at 40) arrives at our 100, without an echo.
	c.Record(t0.Add(ms(100)), 40, 0, false)
	if _, ok := c.RTT(); ok {
		t.Fatal("RTT known from a frame without an echo")
	}
	// We answer 30 ms later: e is the peer's 40 plus the 30 we held it.
	if tt, e, hasE := c.Stamp(t0.Add(ms(130) + 700*time.Microsecond)); tt != 130 || e != 70 || !hasE {
		t.Fatalf("Stamp = %d, %d, %v; want t 130, e 70", tt, e, hasE)
	}
	// The peer echoes our 130 plus its own hold; it arrives at our 190.
	c.Record(t0.Add(ms(190)), 95, 130, true)
	if rtt, ok := c.RTT(); !ok || rtt != ms(60) {
		t.Fatalf("RTT = %v, %v; want 60ms", rtt, ok)
	}
	// The echo now refers to the peer's latest t.
	if _, e, _ := c.Stamp(t0.Add(ms(200))); e != 105 {
		t.Errorf("Stamp after the second frame: e = %d, want 95+10", e)
	}
	// An echo equal to our clock is a round trip of 0.
	c.Record(t0.Add(ms(230)), 100, 230, true)
	if rtt, ok := c.RTT(); !ok || rtt != 0 {
		t.Errorf("RTT = %v, %v; want 0", rtt, ok)
	}
	c.Record(t0.Add(ms(300)), 150, 230, true)
	// Echoes that cannot be right are no measurement: the last RTT stays.
	for _, bad := range []struct {
		at, e int64
		why   string
	}{
		{310, 9999, "ahead of the clock"},
		{310, 229, "behind an earlier echo"},
		{310, 0, "before the first frame sent"},
		{30000, 230, "more than MaxRTT"},
	} {
		c.Record(t0.Add(ms(bad.at)), 160, bad.e, true)
		if rtt, _ := c.RTT(); rtt != ms(70) {
			t.Errorf("RTT after an echo %s = %v, want the previous 70ms", bad.why, rtt)
		}
	}
	// Stamping at a time before the last arrival holds for 0 ms.
	if tt, e, _ := c.Stamp(t0.Add(ms(305))); tt != 305 || e != 160 {
		t.Errorf("Stamp before the last arrival = %d, %d; want 305, 160", tt, e)
	}
	// Clocks beyond MaxClock are clamped, so echoes never overflow.
	c.Record(t0.Add(ms(400)), 1<<62, 0, false)
	if _, e, _ := c.Stamp(t0.Add(ms(500))); e != MaxClock {
		t.Errorf("echo of a huge t = %d, want MaxClock", e)
	}
}

// TestClockTwoPeers runs the worked example of docs/protocol.md: the
// server's clock reads 12 ms more than the client's, a frame takes 25 ms
// each way, and the server holds the ping 10 ms before its pong. Both ends
// measure the true 50 ms round trip although their clocks differ.
func TestClockTwoPeers(t *testing.T) {
	const oneWay = 25 * time.Millisecond
	client := NewClock(t0)
	server := NewClock(t0.Add(ms(-12)))
	at := func(a int64) time.Time { return t0.Add(ms(a)) } // a: ms since the client's start

	// The server sends ready at once: t 12, no e.
	st, se, hasE := server.Stamp(at(0))
	if st != 12 || hasE {
		t.Fatalf("ready: t %d e %d %v; want t 12, no e", st, se, hasE)
	}
	client.Record(at(0).Add(oneWay), st, se, hasE)
	if _, ok := client.RTT(); ok {
		t.Fatal("client RTT known from ready")
	}

	// The client pings at 1000: e is 12 plus the 975 ms it held ready.
	ct, ce, hasE := client.Stamp(at(1000))
	if ct != 1000 || ce != 987 || !hasE {
		t.Fatalf("ping: t %d e %d %v; want 1000, 987", ct, ce, hasE)
	}
	server.Record(at(1000).Add(oneWay), ct, ce, hasE)
	if rtt, ok := server.RTT(); !ok || rtt != ms(50) {
		t.Fatalf("server RTT = %v, %v; want 50ms (1037 − 987)", rtt, ok)
	}

	// The server answers 10 ms later: e is 1000 plus 10.
	st, se, hasE = server.Stamp(at(1035))
	if st != 1047 || se != 1010 || !hasE {
		t.Fatalf("pong: t %d e %d %v; want 1047, 1010", st, se, hasE)
	}
	client.Record(at(1035).Add(oneWay), st, se, hasE)
	if rtt, ok := client.RTT(); !ok || rtt != ms(50) {
		t.Fatalf("client RTT = %v, %v; want 50ms (1060 − 1010)", rtt, ok)
	}
}

// TestClockConcurrent records on one goroutine and stamps on another, as
// a session's reader and writer do (run with -race).
func TestClockConcurrent(t *testing.T) {
	c := NewClock(t0)
	c.Stamp(t0) // the first frame this side sends, as ready is
	const n = 2000
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(1); i <= n; i++ {
			c.Record(t0.Add(ms(i)), i, i-1, true)
		}
	})
	bad := 0
	wg.Go(func() {
		for i := int64(1); i <= n; i++ {
			// The peer's clock runs in step with ours (t = i at our i), so
			// its t plus the hold is always our clock at the stamp.
			if tt, e, ok := c.Stamp(t0.Add(ms(n + i))); ok && e != tt {
				bad++
			}
		}
	})
	wg.Wait()
	if bad > 0 {
		t.Errorf("%d echoes differ from the peer's t plus the hold", bad)
	}
	if rtt, ok := c.RTT(); !ok || rtt != ms(1) {
		t.Errorf("RTT = %v, %v; want the last sample, 1ms", rtt, ok)
	}
}

func TestNilClockHasNoRTT(t *testing.T) {
	var c *Clock
	if rtt, ok := c.RTT(); ok || rtt != 0 {
		t.Fatalf("nil clock RTT = %v, %v", rtt, ok)
	}
}
