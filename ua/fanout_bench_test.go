package ua

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// fanoutRoom builds a server and a channel room of n sessions, for
// measuring the fan-out path. A v1 session has a wire over a loopback TCP
// connection whose other end is read and discarded (the fan-out writes v1
// frames straight to the socket); a v2 session has only its queue.
func fanoutRoom(tb testing.TB, n, queue int, v versions.Version) (*Server, *room, []*session) {
	cfg := Config{Version: v, SendQueue: queue}
	cfg.setDefaults()
	srv := &Server{cfg: cfg, codec: v.Codec, log: cfg.Logger, met: newMetrics(v.Name)}
	srv.hub = newHub(srv)
	r := &room{key: roomKey{tenant: "acme", name: "world"}, members: make(map[*session]struct{})}
	r.deliver = srv.hub.channelDeliver(r)
	var wires []*wire
	if v.Codec.MaxBatch() == 1 {
		wires = loopbackWires(tb, n)
	}
	sessions := make([]*session, n)
	for i := range sessions {
		var w *wire
		if wires != nil {
			w = wires[i]
		}
		ss := newSession(srv, nil, w)
		ss.id = kaiwa.Identity{Tenant: "acme", User: "u"}
		sessions[i] = ss
		r.members[ss] = struct{}{}
	}
	r.publishView()
	return srv, r, sessions
}

// drain empties the sessions' queues (v2; v1 sessions have none: their
// frames went to the socket).
func drain(sessions []*session) {
	var buf [][]byte
	for _, ss := range sessions {
		if ss.queue == nil {
			continue
		}
		for ss.queue.len() > 0 {
			buf = ss.queue.pop(buf[:0], 1024)
		}
	}
}

var benchMsg = kaiwa.Message{
	Tenant: "acme", Channel: "world", ID: "t1-42", Seq: 42, Prev: 41, From: "alice", Name: "Alice",
	Text: strings.Repeat("x", 100), TS: 1795284401038,
}

// loopbackWires returns n wires over loopback TCP connections whose other
// ends are read and discarded until the test ends.
func loopbackWires(tb testing.TB, n int) []*wire {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	wires := make([]*wire, n)
	for i := range wires {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			tb.Fatal(err)
		}
		go io.Copy(io.Discard, c)
		tb.Cleanup(func() { c.Close(); s.Close() })
		wires[i] = newWire(s, 10*time.Second)
	}
	return wires
}

func benchFanout(b *testing.B, n int, v versions.Version) {
	srv, r, sessions := fanoutRoom(b, n, 1024, v)
	h := srv.hub.channelHandler(r)
	m := benchMsg
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Prev, m.Seq = m.Seq, m.Seq+1 // the channel's next message
		h.Message(&m)
		if i++; i%32 == 0 {
			b.StopTimer()
			drain(sessions)
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
}

// BenchmarkFanout_1000Subs is one message to a channel with 1,000 local
// v1 members: one encode, 1,000 socket writes (the write system calls
// included).
func BenchmarkFanout_1000Subs(b *testing.B) { benchFanout(b, 1000, versions.Default().All()[0]) }

// BenchmarkFanout_1000Subs_V2 is the same for v2 sessions, up to their
// queues (the writers frame and write them).
func BenchmarkFanout_1000Subs_V2(b *testing.B) { benchFanout(b, 1000, versions.Default().All()[1]) }

// TestFanoutAllocatesNothingPerRecipient: the allocations of one fan-out do
// not grow with the number of recipients.
func TestFanoutAllocatesNothingPerRecipient(t *testing.T) {
	allocs := func(n int) float64 {
		srv, r, sessions := fanoutRoom(t, n, 256, versions.Default().All()[0])
		h := srv.hub.channelHandler(r)
		m := benchMsg
		return testing.AllocsPerRun(100, func() {
			m.Prev, m.Seq = m.Seq, m.Seq+1
			h.Message(&m)
			drain(sessions)
		})
	}
	small, large := allocs(10), allocs(1000)
	if large > small {
		t.Errorf("fan-out to 1000 sessions allocates %.1f times, to 10 sessions %.1f: allocation per recipient", large, small)
	}
}

// BenchmarkSessionWriter measures one session's writer: queued ops written
// to a real WebSocket over loopback TCP and read by a client.
func BenchmarkSessionWriter(b *testing.B) {
	for _, v := range versions.Default().Live() {
		b.Run(v.Name, func(b *testing.B) { benchWriter(b, v) })
	}
}

// sessionPair returns a server session of version v over a real
// WebSocket on loopback TCP, and the client's end.
func sessionPair(tb testing.TB, v versions.Version, queue int) (*Server, *session, *websocket.Conn) {
	cfg := Config{Version: v, SendQueue: queue, PingInterval: time.Hour}
	cfg.setDefaults()
	srv := &Server{cfg: cfg, codec: v.Codec, log: cfg.Logger, met: newMetrics(v.Name)}
	ready := make(chan *session)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb := &smallBuffers{ResponseWriter: w, size: cfg.BufferSize, timeout: cfg.WriteTimeout}
		conn, err := websocket.Accept(sb, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		ss := newSession(srv, conn, sb.wire)
		ready <- ss
		<-ss.done
	}))
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetReadLimit(1 << 24)
	ss := <-ready
	tb.Cleanup(func() {
		ss.closeWith(websocket.StatusNormalClosure, "")
		c.CloseNow()
		hs.Close()
	})
	return srv, ss, c
}

func benchWriter(b *testing.B, v versions.Version) {
	srv, ss, c := sessionPair(b, v, 4096)
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
	op := srv.out(v.Codec.EncodeMessage(&benchMsg))
	b.ReportAllocs()
	b.SetBytes(int64(len(op)))
	for b.Loop() {
		for !ss.offer(op, 0) {
			time.Sleep(10 * time.Microsecond) // the socket is behind: wait for room
		}
	}
	// Wait until everything queued is written.
	for ss.queue.len() > 0 || ss.wire.waiting() > 0 {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(max(frames.Load(), 1)), "ops/frame")
	ss.closeWith(websocket.StatusNormalClosure, "")
}
