package ua

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/ua/internal/outbox"
	"github.com/kaiwa-chat/kaiwa/ua/internal/wstest"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// testServer returns a server of version v subscribed to nothing (no
// bus), for driving sessions and rooms directly.
func testServer(v versions.Version, tune func(*Config)) *Server {
	cfg := Config{Version: v, PingInterval: time.Hour}
	if tune != nil {
		tune(&cfg)
	}
	return newServer(cfg)
}

// loopbackSessions returns n sessions of srv over loopback TCP, each
// upgraded as the server upgrades its clients (Server.accept), and the
// clients' ends. The sessions are not started (no reader goroutine): the
// caller drives them.
func loopbackSessions(tb testing.TB, srv *Server, n int) ([]*session, []*wstest.Peer) {
	tb.Helper()
	hs, next := sessionServer(tb, srv)
	sessions := make([]*session, n)
	peers := make([]*wstest.Peer, n)
	for i := range n {
		peers[i] = wstest.Dial(tb, hs.Listener.Addr().String(), 0)
		ss := next()
		ss.id = kaiwa.Identity{Tenant: "acme", User: "u"}
		sessions[i] = ss
		tb.Cleanup(func() { ss.conn.CloseNow() })
	}
	return sessions, peers
}

// sessionServer serves srv's upgrades on loopback TCP; next returns each
// session, upgraded as the server upgrades its clients (Server.accept)
// and not started.
func sessionServer(tb testing.TB, srv *Server) (hs *httptest.Server, next func() *session) {
	got := make(chan *session, 1)
	hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss, err := srv.accept(w, r)
		if err != nil {
			tb.Errorf("accept: %v", err)
		}
		got <- ss
	}))
	tb.Cleanup(hs.Close)
	return hs, func() *session {
		ss := <-got
		if ss == nil {
			tb.FailNow()
		}
		return ss
	}
}

// channelRoom returns the room of channel "world" holding sessions.
func channelRoom(srv *Server, sessions []*session) *room {
	r := &room{key: roomKey{tenant: "acme", name: "world"}, lock: new(sync.Mutex), members: make(map[*session]struct{})}
	r.deliver = srv.hub.channelDeliver(r)
	r.lock.Lock()
	defer r.lock.Unlock()
	for _, ss := range sessions {
		r.members[ss] = struct{}{}
	}
	r.membersChanged()
	return r
}

var benchMsg = kaiwa.Message{
	Tenant: "acme", Channel: "world", ID: "t1-42", Seq: 42, Prev: 41, From: "alice", Name: "Alice",
	Text: strings.Repeat("x", 100), TS: 1795284401038,
}

func benchFanout(b *testing.B, n int, v versions.Version) {
	srv := testServer(v, nil)
	sessions, peers := loopbackSessions(b, srv, n)
	for _, p := range peers {
		p.Discard()
	}
	h := srv.hub.channelHandler(channelRoom(srv, sessions))
	m := benchMsg
	b.ReportAllocs()
	for b.Loop() {
		m.Prev, m.Seq = m.Seq, m.Seq+1 // the channel's next message
		h.Message(&m)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
	for _, ss := range sessions {
		if ss.out.Closing() {
			b.Fatal("a session was closed as slow: the clients did not keep up")
		}
	}
}

// BenchmarkFanout_1000Subs is one message to a channel with 1,000 local
// v1 members on loopback TCP: one encode into a whole frame, then 1,000
// socket writes from the fan-out (the write system calls included).
func BenchmarkFanout_1000Subs(b *testing.B) { benchFanout(b, 1000, versions.Default().All()[0]) }

// BenchmarkFanout_1000Subs_V2 is the same for v2 sessions: one encode,
// then each session frames the op alone and writes it from the fan-out.
func BenchmarkFanout_1000Subs_V2(b *testing.B) { benchFanout(b, 1000, versions.Default().All()[1]) }

// TestFanoutAllocatesNothingPerRecipient: the allocations of one fan-out do
// not grow with the number of recipients.
func TestFanoutAllocatesNothingPerRecipient(t *testing.T) {
	allocs := func(n int) float64 {
		srv := testServer(versions.Default().All()[0], nil)
		sessions, peers := loopbackSessions(t, srv, n)
		for _, p := range peers {
			p.Discard()
		}
		h := srv.hub.channelHandler(channelRoom(srv, sessions))
		m := benchMsg
		return testing.AllocsPerRun(100, func() {
			m.Prev, m.Seq = m.Seq, m.Seq+1
			h.Message(&m)
		})
	}
	small, large := allocs(10), allocs(1000)
	if large > small {
		t.Errorf("fan-out to 1000 sessions allocates %.1f times, to 10 sessions %.1f: allocation per recipient", large, small)
	}
}

// BenchmarkSessionWriter measures one session's outbox: ops given one
// after another to a real WebSocket over loopback TCP and read by a
// client.
func BenchmarkSessionWriter(b *testing.B) {
	for _, v := range versions.Default().Live() {
		b.Run(v.Name, func(b *testing.B) { benchWriter(b, v) })
	}
}

// sessionPair returns a server session of version v over a real
// WebSocket on loopback TCP, upgraded as the server upgrades its
// clients, and the client's end.
func sessionPair(tb testing.TB, v versions.Version, queueBytes int) (*Server, *session, *websocket.Conn) {
	srv := testServer(v, func(c *Config) { c.SendQueueBytes = queueBytes })
	hs, next := sessionServer(tb, srv)
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetReadLimit(1 << 24)
	ss := next()
	tb.Cleanup(func() {
		c.CloseNow()
		ss.conn.CloseNow()
	})
	return srv, ss, c
}

func benchWriter(b *testing.B, v versions.Version) {
	const limit = 1 << 20
	_, ss, c := sessionPair(b, v, limit)
	ctx := context.Background()
	var frames atomic.Int64
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
			frames.Add(1)
		}
	}()
	op := outbox.Prepare(v.Codec, v.Codec.EncodeMessage(&benchMsg))
	b.ReportAllocs()
	b.SetBytes(int64(len(op)))
	const every = 64 // ops given between looks at the outbox
	for i := 0; b.Loop(); i++ {
		if i%every == 0 {
			for ss.out.Queued()+every*len(op) > limit {
				time.Sleep(10 * time.Microsecond) // the socket is behind: wait for room
			}
		}
		if err := ss.out.Send(op); err != nil {
			b.Fatal(err)
		}
	}
	// Wait until everything queued is written.
	for ss.out.Queued() > 0 {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(max(frames.Load(), 1)), "ops/frame")
}

// TestFanoutWithBlocksAllocatesNothingPerRecipient: culling the messages
// of users a recipient blocks happens in the fan-out over the one encoded
// frame, so the allocations still do not grow with the recipients.
func TestFanoutWithBlocksAllocatesNothingPerRecipient(t *testing.T) {
	allocs := func(n int) float64 {
		srv := testServer(versions.Default().All()[0], nil)
		sessions, peers := loopbackSessions(t, srv, n)
		for _, p := range peers {
			p.Discard()
		}
		for i, ss := range sessions {
			if i%2 == 0 {
				ss.setBlocks([]string{"alice", "troll"}) // half the room blocks the sender
			}
		}
		h := srv.hub.channelHandler(channelRoom(srv, sessions))
		m := benchMsg
		return testing.AllocsPerRun(100, func() {
			m.Prev, m.Seq = m.Seq, m.Seq+1
			h.Message(&m)
		})
	}
	small, large := allocs(10), allocs(1000)
	if large > small {
		t.Errorf("fan-out to 1000 sessions with blocks allocates %.1f times, to 10 sessions %.1f: allocation per recipient", large, small)
	}
}

// BenchmarkFanout_1000Subs_Blocks is BenchmarkFanout_1000Subs with every
// recipient blocking someone else: the cost of the blocks check.
func BenchmarkFanout_1000Subs_Blocks(b *testing.B) {
	srv := testServer(versions.Default().All()[0], nil)
	sessions, peers := loopbackSessions(b, srv, 1000)
	for _, p := range peers {
		p.Discard()
	}
	for _, ss := range sessions {
		ss.setBlocks([]string{"troll"})
	}
	h := srv.hub.channelHandler(channelRoom(srv, sessions))
	m := benchMsg
	b.ReportAllocs()
	for b.Loop() {
		m.Prev, m.Seq = m.Seq, m.Seq+1
		h.Message(&m)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/delivery")
}
