package client

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/internal/bench/bare"
)

// BenchmarkReadPath measures what a Conn's reader costs per delivered
// "msg" op (one op of the benchmark is one delivery), from the socket to
// the caller, which takes each message's data from [Conn.Events] or from
// [Options.OnMessage]. A loopback server writes pre-built frames of room
// messages as the UA encodes them, with a benchmark payload:
//
//   - v1, v2, v2x16 (16 ops per frame): one connection, the frames
//     streamed in large writes, so that the server's cost stays small.
//   - room100: a room of 100 v1 connections in lockstep, as in the load
//     tool's room scenario: each message is written to every connection,
//     one write per frame, and the next once all have received it, so
//     that every delivery wakes a reader (the server's writes are part of
//     the cost).
//
// cpu-ns/op is the process's CPU per delivery, which other load on the
// machine skews less than ns/op.
func BenchmarkReadPath(b *testing.B) {
	for _, rc := range []readPathCase{
		{name: "v1", version: "v1", batch: 1, conns: 1},
		{name: "v2", version: "v2", batch: 1, conns: 1},
		{name: "v2x16", version: "v2", batch: 16, conns: 1},
		{name: "room100", version: "v1", batch: 1, conns: 100},
	} {
		b.Run(rc.name+"/events", func(b *testing.B) { benchmarkReadPath(b, rc, false) })
		b.Run(rc.name+"/onmessage", func(b *testing.B) { benchmarkReadPath(b, rc, true) })
	}
}

// readPathCase is one shape of [BenchmarkReadPath].
type readPathCase struct {
	name, version string
	batch         int // ops per frame (v2)
	conns         int // more than one: lockstep rounds
}

func benchmarkReadPath(b *testing.B, rc readPathCase, onMessage bool) {
	hub := newFrameHub(b, rc.version)
	rounds := (b.N + rc.conns - 1) / rc.conns
	var (
		received  atomic.Int64
		bytes     atomic.Int64
		roundDone = make(chan struct{}, 1)
		all       = make(chan struct{})
	)
	count := func(data []byte) {
		bytes.Add(int64(len(data)))
		switch n := received.Add(1); {
		case n == int64(rounds*rc.conns):
			close(all)
		case n%int64(rc.conns) == 0:
			select {
			case roundDone <- struct{}{}:
			default:
			}
		}
	}
	opts := Options{Token: "t", EventBuffer: 4096}
	if onMessage {
		opts.OnMessage = func(m RawMsg) { count(m.Data) }
	}
	conns := make([]*Conn, rc.conns)
	for i := range conns {
		conns[i] = dialURL(b, hub.url, opts)
		if !onMessage {
			go func() {
				for ev := range conns[i].Events() {
					if ev.Msg != nil {
						count(ev.Msg.Data)
					}
				}
			}()
		}
	}
	hub.wait(b, rc.conns)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	if rc.conns == 1 {
		go hub.stream(rc.batch, rounds)
	} else {
		go hub.lockstep(rounds, roundDone, all)
	}
	select {
	case <-all:
	case <-time.After(time.Minute):
		b.Fatalf("%d deliveries of %d in a minute", received.Load(), rounds*rc.conns)
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	if bytes.Load() == 0 {
		b.Fatal("no data")
	}
	hub.close()
}

// frameHub is a loopback server whose WebSocket sessions are written by
// hand, frames prepared in advance, many per write when streaming.
type frameHub struct {
	url     string
	version string
	joined  chan *bufio.ReadWriter
	mu      sync.Mutex
	writers []*bufio.ReadWriter
	done    chan struct{}
}

func newFrameHub(tb testing.TB, version string) *frameHub {
	tb.Helper()
	h := &frameHub{version: version, joined: make(chan *bufio.ReadWriter, 1024), done: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	tb.Cleanup(func() {
		h.close()
		srv.Close()
	})
	h.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/" + version + "/ws"
	return h
}

// serve upgrades, sends ready, and holds the session until the hub
// closes; then it waits for the client's close.
func (h *frameHub) serve(w http.ResponseWriter, r *http.Request) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		bare.AcceptKey(r.Header.Get("Sec-WebSocket-Key")))
	ready := `{"op":"ready","user":"u1","name":"U1","channels":["room"],"version":"` + h.version + `","server_time":1}`
	if h.version != "v1" {
		ready = `{"t":5,"ops":[` + ready + `]}`
	}
	_, _ = rw.Write(bare.AppendFrame(nil, 0x1, []byte(ready)))
	_ = rw.Flush()
	h.joined <- rw
	<-h.done
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.Copy(io.Discard, rw) // until the client's close
}

// wait waits for n sessions.
func (h *frameHub) wait(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		select {
		case rw := <-h.joined:
			h.writers = append(h.writers, rw)
		case <-time.After(10 * time.Second):
			tb.Fatal("sessions did not start")
		}
	}
}

// stream writes n "msg" ops to the one session, batch ops per frame (v2).
func (h *frameHub) stream(batch, n int) {
	w := h.writers[0]
	var body, frame []byte
	for i := 1; i <= n; {
		body = body[:0]
		if h.version != "v1" {
			body = append(body, `{"t":5,"ops":[`...)
		}
		for k := 0; k < batch && i <= n; k, i = k+1, i+1 {
			if k > 0 {
				body = append(body, ',')
			}
			body = appendRoomMsg(body, h.version, i)
		}
		if h.version != "v1" {
			body = append(body, "]}"...)
		}
		frame = bare.AppendFrame(frame[:0], 0x1, body)
		_, _ = w.Write(frame)
	}
	_ = w.Flush()
}

// lockstep writes each of n v1 "msg" ops to every session, one write per
// frame, and waits for roundDone before the next.
func (h *frameHub) lockstep(n int, roundDone, all <-chan struct{}) {
	var body, frame []byte
	for i := 1; i <= n; i++ {
		body = appendRoomMsg(body[:0], "v1", i)
		frame = bare.AppendFrame(frame[:0], 0x1, body)
		for _, w := range h.writers {
			_, _ = w.Write(frame)
			_ = w.Flush()
		}
		select {
		case <-roundDone:
		case <-all:
			return
		}
	}
}

// close sends every session a close frame and releases them.
func (h *frameHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
		return
	default:
	}
	for _, w := range h.writers {
		_, _ = w.Write(bare.AppendFrame(nil, 0x8, []byte{0x03, 0xE8}))
		_ = w.Flush()
	}
	close(h.done)
}

// appendRoomMsg appends message i of a room as the UA encodes it, with a
// 100-byte benchmark payload.
func appendRoomMsg(b []byte, version string, i int) []byte {
	b = append(b, `{"op":"msg","ch":"room","id":"01JD5Q8Z`...)
	b = strconv.AppendInt(b, int64(1e9+i), 10)
	b = append(b, '"')
	if version != "v1" {
		b = strconv.AppendInt(append(b, `,"seq":`...), int64(i), 10)
		b = strconv.AppendInt(append(b, `,"prev":`...), int64(i-1), 10)
	}
	b = append(b, `,"from":"u7","name":"Player 7","text":"","data":{"p":3,"n":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"t":1732218000123456789,"x":"`...)
	b = append(b, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"...)
	return append(b, `"},"ts":1732218000123}`...)
}

// processCPU returns the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
