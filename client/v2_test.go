package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// TestV2Clocks checks the envelope clocks both ways and the RTT the Conn
// derives from them.
func TestV2Clocks(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFakeServer(t, false)
	dialed := time.Now()
	c := dialURL(t, fs.URL2, Options{Token: "t:alice"})
	s := fs.session(t)
	if c.Version() != "v2" || c.Ready().Version != "v2" {
		t.Fatalf("Version() = %q, ready %+v", c.Version(), c.Ready())
	}
	if _, ok := c.RTT(); ok {
		t.Error("RTT known before the Conn sent anything")
	}

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	frames := s.clientFrames()
	if len(frames) != 1 {
		t.Fatalf("server saw %d client frames, want 1", len(frames))
	}
	f := frames[0]
	// t counts from when the WebSocket opened: after dialed, before now.
	if f.t < 0 || f.t > time.Since(dialed).Milliseconds() {
		t.Errorf("client t = %d, want between 0 and %d", f.t, time.Since(dialed).Milliseconds())
	}
	// e echoes the server's ready t (0 or a few ms) plus the time held:
	// never more than the server's own clock when it arrived.
	if f.e < 0 || f.e > f.own {
		t.Errorf("client e = %d, want between 0 and the server clock %d", f.e, f.own)
	}
	rtt, ok := c.RTT()
	if !ok || rtt < 0 || rtt > time.Since(dialed) {
		t.Errorf("RTT = %v, %v after a ping", rtt, ok)
	}

	// 100 ms more on the way back is 100 ms more round trip.
	const lag = 100 * time.Millisecond
	s.setLag(lag)
	start := time.Now()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	elapsed := time.Since(start)
	rtt, ok = c.RTT()
	if !ok || rtt < lag || rtt > elapsed+time.Millisecond {
		t.Errorf("RTT = %v, %v; want at least the %v lag and at most the ping's %v", rtt, ok, lag, elapsed)
	}
	frames = s.clientFrames()
	if len(frames) != 2 || frames[1].t < frames[0].t || frames[1].e < frames[0].e {
		t.Errorf("client clocks went backwards: %+v", frames)
	}
}

// TestV2FirstFrameClocks: with first-frame auth the auth frame carries t
// and no e, and the ready frame's echo gives the RTT at once.
func TestV2FirstFrameClocks(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	c := dialURL(t, fs.URL2, Options{Token: "t:bob", FirstFrameAuth: true})
	s := fs.session(t)
	if f := s.clientFrames(); len(f) != 1 || f[0].e != -1 {
		t.Errorf("auth frame clocks = %+v, want one frame without e", f)
	}
	if _, ok := c.RTT(); !ok {
		t.Error("RTT unknown after ready echoed the auth frame")
	}
	if _, ok := dial(t, fs, Options{Token: "t:alice"}).RTT(); ok {
		t.Error("a v1 Conn reports an RTT")
	}
}

// TestV2Chat has v2 and v1 clients share a channel: v2 messages carry seq
// and prev, sends return seq, and a cid resend is not delivered twice.
func TestV2Chat(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFakeServer(t, false)
	alice := dialURL(t, fs.URL2, Options{Token: "t:alice"})
	bob := dialURL(t, fs.URL2, Options{Token: "t:bob"})
	carol := dial(t, fs, Options{Token: "t:carol"}) // v1
	for _, c := range []*Conn{alice, bob, carol} {
		if err := c.Join(ctx, "lobby"); err != nil {
			t.Fatalf("Join: %v", err)
		}
	}
	drainPresence(t, alice, 2)
	drainPresence(t, bob, 1)

	data := json.RawMessage(`{"emote" : "wave"}`)
	id1, seq1, err := bob.SayCID(ctx, "lobby", "one", data, "bob-1")
	if err != nil || id1 == "" || seq1 == 0 {
		t.Fatalf("SayCID = %q, %d, %v", id1, seq1, err)
	}
	id2, seq2, err := alice.SayCID(ctx, "lobby", "two", nil, "")
	if err != nil || seq2 <= seq1 {
		t.Fatalf("SayCID without cid = %q, %d, %v; want a seq after %d", id2, seq2, err, seq1)
	}
	for _, c := range []*Conn{alice, bob} {
		m := nextMsg(t, c)
		if m.ID != id1 || m.Seq != seq1 || m.Prev != 0 || string(m.Data) != string(data) {
			t.Errorf("%s got %+v, want the first message with seq %d, prev 0, data byte for byte", c.Ready().User, m, seq1)
		}
		if m := nextMsg(t, c); m.ID != id2 || m.Seq != seq2 || m.Prev != seq1 {
			t.Errorf("%s got %+v, want seq %d prev %d", c.Ready().User, m, seq2, seq1)
		}
	}
	if m := nextMsg(t, carol); m.ID != id1 || m.Seq != 0 || m.Prev != 0 {
		t.Errorf("v1 client got %+v, want no seq", m)
	}
	nextMsg(t, carol)

	// The resend of bob-1 gets the first ok and is not delivered again:
	// the next message anyone sees is the one after it.
	rid, rseq, err := bob.SayCID(ctx, "lobby", "one", data, "bob-1")
	if err != nil || rid != id1 || rseq != seq1 {
		t.Errorf("resend = %q, %d, %v; want the first ok %q, %d", rid, rseq, err, id1, seq1)
	}
	id3, seq3, err := bob.SayCID(ctx, "lobby", "three", nil, NewCID())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Conn{alice, bob} {
		if m := nextMsg(t, c); m.ID != id3 || m.Prev != seq2 {
			t.Errorf("after the resend %s got %+v, want %s (seq %d, prev %d)", c.Ready().User, m, id3, seq3, seq2)
		}
	}

	did, dch, dseq, err := alice.DMCID(ctx, "bob", "psst", nil, "alice-dm-1")
	if err != nil || dch != "dm:alice:bob" || dseq <= seq3 {
		t.Fatalf("DMCID = %q, %q, %d, %v", did, dch, dseq, err)
	}
	if again, _, againSeq, _ := alice.DMCID(ctx, "bob", "psst", nil, "alice-dm-1"); again != did || againSeq != dseq {
		t.Errorf("DM resend = %q, %d; want %q, %d", again, againSeq, did, dseq)
	}
	if m := nextMsg(t, bob); m.Ch != dch || m.Seq != dseq {
		t.Errorf("bob got %+v, want the dm", m)
	}

	msgs, err := alice.History(ctx, "lobby", 0, "")
	if err != nil || len(msgs) != 3 || msgs[0].Seq != seq1 || msgs[2].Prev != seq2 {
		t.Errorf("v2 History = %+v, %v", msgs, err)
	}
	// alice's own dm reached her events before the ok did.
	want := map[string]uint64{"lobby": seq3, dch: dseq}
	for _, c := range []*Conn{alice, bob} {
		if got := c.LastSeqs(); !maps.Equal(got, want) {
			t.Errorf("%s: LastSeqs() = %v, want %v", c.Ready().User, got, want)
		}
	}
	if got := carol.LastSeqs(); len(got) != 0 {
		t.Errorf("v1 LastSeqs() = %v, want none", got)
	}
}

// TestV2Batch: a frame of several ops is unpacked in order, replies and
// events alike.
func TestV2Batch(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFakeServer(t, false)
	fs.setHook(func(s *fakeSession, op fakeOp, _ []byte) bool {
		if op.Op != "batch" {
			return false
		}
		s.sendBatch(
			[]byte(`{"op":"msg","ch":"lobby","id":"a","seq":10,"prev":9,"text":"A","ts":1}`),
			[]byte(`{"op":"ok","ref":"`+op.Ref+`","id":"x"}`),
			[]byte(`{"op":"presence","ch":"lobby","user":"bob","name":"Bob","event":"join"}`),
			[]byte(`{"op":"msg","ch":"lobby","id":"b","seq":12,"prev":10,"text":"B","ts":2}`),
		)
		return true
	})
	c := dialURL(t, fs.URL2, Options{Token: "t:alice"})
	r, err := c.Request(ctx, map[string]any{"op": "batch"})
	if err != nil || r.Op != "ok" || r.ID != "x" {
		t.Fatalf("Request = %+v, %v", r, err)
	}
	var got []string
	for range 3 {
		ev := nextEvent(t, c)
		got = append(got, ev.Op+":"+string(ev.Raw))
	}
	want := []string{
		`msg:{"op":"msg","ch":"lobby","id":"a","seq":10,"prev":9,"text":"A","ts":1}`,
		`presence:{"op":"presence","ch":"lobby","user":"bob","name":"Bob","event":"join"}`,
		`msg:{"op":"msg","ch":"lobby","id":"b","seq":12,"prev":10,"text":"B","ts":2}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := c.LastSeqs(); got["lobby"] != 12 {
		t.Errorf("LastSeqs() = %v, want lobby 12", got)
	}
}

// TestV2Resume reconnects with the last seqs of a previous Conn: the
// missed messages arrive in order before "resumed", and a gap history no
// longer covers is reported as not recovered.
func TestV2Resume(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	ctx, resume, missed := missWhileAway(t, fs)
	first := resume["guild.1"]

	fs.mu.Lock()
	upgrades := len(fs.upgrades)
	fs.mu.Unlock()
	again := dialURL(t, fs.URL2, Options{Token: "t:alice", Resume: resume})
	fs.mu.Lock()
	if h := fs.upgrades[upgrades].Get("Authorization"); h != "" {
		t.Errorf("a resuming Conn sent an Authorization header %q; resume needs first-frame auth", h)
	}
	fs.mu.Unlock()
	if again.Ready().User != "alice" {
		t.Fatalf("Ready() = %+v", again.Ready())
	}
	prev := first
	for _, seq := range missed {
		m := nextMsg(t, again)
		if m.Seq != seq || m.Prev != prev {
			t.Fatalf("replayed %+v, want seq %d prev %d", m, seq, prev)
		}
		prev = seq
	}
	if ev := nextEvent(t, again); ev.Op != "resumed" || ev.Ch != "guild.1" || !ev.Recovered {
		t.Fatalf("after the replay got %+v, want resumed guild.1 recovered", ev)
	}
	if got := again.LastSeqs(); got["guild.1"] != missed[2] {
		t.Errorf("LastSeqs() = %v, want guild.1 %d", got, missed[2])
	}

	// History kept only the last message: resuming from "before" cannot
	// be recovered; resuming from a seq with nothing after it can.
	fs.trimHistory("guild.1", 1)
	lost := dialURL(t, fs.URL2, Options{Token: "t:alice", Resume: map[string]uint64{"guild.1": first, "lobby": 0}})
	if ev := nextEvent(t, lost); ev.Op != "resumed" || ev.Ch != "guild.1" || ev.Recovered {
		t.Fatalf("got %+v, want resumed guild.1 not recovered", ev)
	}
	if ev := nextEvent(t, lost); ev.Op != "resumed" || ev.Ch != "lobby" || !ev.Recovered {
		t.Fatalf("got %+v, want resumed lobby recovered", ev)
	}
	if got := lost.LastSeqs(); !maps.Equal(got, map[string]uint64{"guild.1": first, "lobby": 0}) {
		t.Errorf("LastSeqs() = %v, want the resume it started from", got)
	}

	_, err := Dial(ctx, fs.URL, Options{Token: "t:alice", Resume: resume})
	if err == nil || !strings.Contains(err.Error(), "v2") {
		t.Errorf("Dial v1 with Resume = %v, want an error naming v2", err)
	}
}

// TestV2Events: reconnect and resumed surface with their fields.
func TestV2Events(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	c := dialURL(t, fs.URL2, Options{Token: "t:alice"})
	s := fs.session(t)
	s.send(map[string]any{"op": "resumed", "ch": "lobby", "recovered": true})
	s.send(map[string]any{"op": "reconnect", "after_ms": 1750})
	if ev := nextEvent(t, c); ev.Op != "resumed" || ev.Ch != "lobby" || !ev.Recovered {
		t.Errorf("got %+v", ev)
	}
	if ev := nextEvent(t, c); ev.Op != "reconnect" || ev.AfterMS != 1750 {
		t.Errorf("got %+v", ev)
	}
}

// TestV2Framing: requests go out in envelopes, SendRaw sends bytes as
// given (a bare op is refused by a v2 server), and a server frame that is
// not an envelope ends the Conn.
func TestV2Framing(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFakeServer(t, false)
	c := dialURL(t, fs.URL2, Options{Token: "t:alice"})
	s := fs.session(t)
	if r, err := c.Request(ctx, map[string]any{"op": "join", "ch": "lobby"}); err != nil || r.Ch != "lobby" {
		t.Fatalf("Request = %+v, %v", r, err)
	}
	if err := c.SendRaw(ctx, []byte(`{"op":"ping","ref":"bare"}`)); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, c); ev.Op != "error" || ev.Err.Code != kaiwa.CodeBadRequest || !strings.Contains(ev.Err.Message, "envelopes") {
		t.Errorf("a bare op got %+v, want bad_request", ev)
	}
	if err := c.SendRaw(ctx, []byte(`{"t":1,"ops":[{"op":"ping","ref":"r1"},{"op":"ping","ref":"r2"}]}`)); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"r1", "r2"} {
		if ev := nextEvent(t, c); ev.Op != "pong" || ev.Ref != ref {
			t.Errorf("got %+v, want pong %s", ev, ref)
		}
	}

	// A frame the client cannot read is reported; the connection goes on.
	s.writeFrame([]byte(`{"op":"msg","ch":"lobby","id":"x","text":"bare","ts":1}`))
	if ev := nextEvent(t, c); ev.Op != "error" || ev.Err.Code != CodeBadFrame || !strings.Contains(ev.Err.Message, "envelopes") {
		t.Errorf("a bare op from the server gave %+v, want a bad_frame error", ev)
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("ping after a bad frame: %v", err)
	}
}

// TestV2MaxFrame: the limit applies to the frame, envelope included.
func TestV2MaxFrame(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFakeServer(t, false)
	c := dialURL(t, fs.URL2, Options{Token: "t:alice", MaxFrame: 200})
	base, _ := encodeOp(outOp{Op: "say", Ref: "c1", Ch: "staff"}, nil)
	// An op that fits alone but not with its envelope is not sent.
	text := strings.Repeat("x", 200-len(base)-len(`,"text":""`)-2)
	if _, err := c.Say(ctx, "staff", text, nil); !kaiwa.IsCode(err, kaiwa.CodeTooLarge) {
		t.Errorf("Say of a frame over MaxFrame = %v, want too_large", err)
	}
	if _, err := c.Say(ctx, "staff", "short", nil); err != nil {
		t.Errorf("Say: %v", err)
	}
}

func TestNewCID(t *testing.T) {
	t.Parallel()
	a, b := NewCID(), NewCID()
	if len(a) != 22 || a == b || len(a) > kaiwa.MaxRefLen {
		t.Errorf("NewCID() = %q, %q", a, b)
	}
}

// TestLastSeqsSlowReader: a message the Conn could not deliver does not
// count as seen, so a resume asks for it again.
func TestLastSeqsSlowReader(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	c := dialURL(t, fs.URL2, Options{Token: "t:alice", EventBuffer: 2, Resume: map[string]uint64{"lobby": 5}})
	s := fs.session(t)
	if ev := nextEvent(t, c); ev.Op != "resumed" {
		t.Fatalf("got %+v", ev)
	}
	s.sendBatch(
		[]byte(`{"op":"msg","ch":"lobby","id":"a","seq":6,"prev":5,"text":"A","ts":1}`),
		[]byte(`{"op":"msg","ch":"lobby","id":"b","seq":7,"prev":6,"text":"B","ts":1}`),
		[]byte(`{"op":"msg","ch":"lobby","id":"c","seq":8,"prev":7,"text":"C","ts":1}`),
		[]byte(`{"op":"msg","ch":"new","id":"d","seq":9,"prev":0,"text":"D","ts":1}`),
	)
	<-c.Done()
	if !errors.Is(c.Err(), ErrSlowReader) {
		t.Fatalf("Err() = %v, want ErrSlowReader", c.Err())
	}
	if got := c.LastSeqs(); !maps.Equal(got, map[string]uint64{"lobby": 7}) {
		t.Errorf("LastSeqs() = %v, want lobby 7: seq 8 was never delivered", got)
	}
}

// drainPresence reads n presence events.
func drainPresence(tb testing.TB, c *Conn, n int) {
	tb.Helper()
	for range n {
		if ev := nextEvent(tb, c); ev.Op != "presence" {
			tb.Fatalf("got %+v, want presence", ev)
		}
	}
}

// nextMsg returns the next event, which must be a msg.
func nextMsg(tb testing.TB, c *Conn) *Message {
	tb.Helper()
	ev := nextEvent(tb, c)
	if ev.Op != "msg" {
		tb.Fatalf("got %+v (%s), want a msg", ev, ev.Raw)
	}
	return ev.Msg
}

// gapExample is the gap detection of the package documentation and
// docs/protocol.md, run by TestGapDetection. resume is what the Conn was
// dialed with (Options.Resume), nil for a fresh start.
func gapExample(c *Conn, resume map[string]uint64, onGap func(ch string, seen, prev uint64)) {
	last := maps.Clone(resume)
	if last == nil {
		last = map[string]uint64{}
	}
	for ev := range c.Events() {
		if ev.Op != "msg" || ev.Msg.Seq == 0 {
			continue
		}
		m := ev.Msg
		if seen, ok := last[m.Ch]; ok && m.Prev != seen {
			onGap(m.Ch, seen, m.Prev) // the channel's messages after seen, up to prev, are missing
		}
		last[m.Ch] = m.Seq
	}
}

func TestGapDetection(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	c := dialURL(t, fs.URL2, Options{Token: "t:alice"})
	s := fs.session(t)
	s.sendBatch(
		[]byte(`{"op":"msg","ch":"lobby","id":"a","seq":3,"prev":1,"text":"A","ts":1}`),
		[]byte(`{"op":"msg","ch":"lobby","id":"b","seq":4,"prev":3,"text":"B","ts":1}`),
		[]byte(`{"op":"msg","ch":"guild.1","id":"c","seq":5,"prev":2,"text":"C","ts":1}`),
		[]byte(`{"op":"msg","ch":"lobby","id":"d","seq":9,"prev":6,"text":"D","ts":1}`),
		[]byte(`{"op":"msg","ch":"guild.1","id":"e","seq":10,"prev":5,"text":"E","ts":1}`),
	)
	s.closeWith(1000, "done", 0)
	// The first message of a channel shows no gap (nothing was seen
	// before it); lobby then skips from 4 to a message whose prev is 6.
	var gaps []string
	gapExample(c, nil, func(ch string, seen, prev uint64) {
		gaps = append(gaps, fmt.Sprintf("%s %d-%d", ch, seen, prev))
	})
	if !slices.Equal(gaps, []string{"lobby 4-6"}) {
		t.Errorf("gaps = %q, want [lobby 4-6]", gaps)
	}
}

// missWhileAway sets up a resume on a fake v2 server: alice and bob in
// guild.1, alice reads bob's first message and leaves, bob says three
// more. It returns alice's last seqs and the seqs she missed.
func missWhileAway(t *testing.T, fs *fakeServer) (ctx context.Context, resume map[string]uint64, missed []uint64) {
	t.Helper()
	ctx = testCtx(t)
	alice := dialURL(t, fs.URL2, Options{Token: "t:alice"})
	bob := dialURL(t, fs.URL2, Options{Token: "t:bob"})
	for _, c := range []*Conn{alice, bob} {
		if err := c.Join(ctx, "guild.1"); err != nil {
			t.Fatal(err)
		}
	}
	drainPresence(t, alice, 1)
	_, first, _ := bob.SayCID(ctx, "guild.1", "before", nil, "")
	if m := nextMsg(t, alice); m.Seq != first {
		t.Fatalf("alice got %+v", m)
	}
	resume = alice.LastSeqs()
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"m1", "m2", "m3"} {
		_, seq, err := bob.SayCID(ctx, "guild.1", text, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		missed = append(missed, seq)
	}
	return ctx, resume, missed
}
