package outbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa/ua/internal/wstest"
	"github.com/kaiwa-chat/kaiwa/versions"
)

var (
	v1 = versions.V1{}
	v2 = versions.V2{}
)

// notice is the slow consumer's closing op in these tests.
var notice = []byte(`{"op":"closing","code":4008}`)

func config(codec versions.Codec, limit int) Config {
	return Config{Codec: codec, Limit: limit, Timeout: 10 * time.Second, SlowNotice: notice, ReadBuffer: 1024}
}

// pair returns an outbox over a loopback TCP connection, made the way the
// UA makes it (an HTTP upgrade through Accept), and the client's end,
// whose receive buffer is rcvbuf bytes (0: the system's). The server's
// send buffer is 16 KiB, so that a client that reads nothing backs the
// outbox up after kilobytes, not megabytes.
func pair(tb testing.TB, cfg Config, rcvbuf int) (*Outbox, *wstest.Peer) {
	tb.Helper()
	var clock *versions.Clock
	if cfg.Codec.MaxBatch() > 1 {
		clock = versions.NewClock(time.Now())
	}
	got := make(chan *Outbox, 1)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, out, err := Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}, &cfg, clock)
		if err != nil {
			tb.Errorf("accept: %v", err)
			got <- nil
			return
		}
		got <- out
	}))
	hs.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			_ = c.(*net.TCPConn).SetWriteBuffer(16 << 10)
		}
	}
	hs.Start()
	tb.Cleanup(hs.Close)
	p := wstest.Dial(tb, hs.Listener.Addr().String(), rcvbuf)
	out := <-got
	if out == nil {
		tb.FailNow()
	}
	tb.Cleanup(func() { _ = out.ws.CloseNow() })
	return out, p
}

// readUntilClose reads data frames up to the close frame, answers the
// close as a client does, and returns the ops the frames carried (each
// v2 frame's ops in turn) and the close code.
func readUntilClose(tb testing.TB, p *wstest.Peer, codec versions.Codec) ([][]byte, websocket.StatusCode) {
	tb.Helper()
	_ = p.SetReadDeadline(time.Now().Add(20 * time.Second))
	var ops [][]byte
	for {
		op, payload, err := p.ReadFrame()
		if err != nil {
			tb.Fatalf("after %d ops: %v", len(ops), err)
		}
		switch op {
		case wstest.OpText:
			if codec.MaxBatch() == 1 {
				ops = append(ops, payload)
				continue
			}
			env, err := versions.ReadEnvelope(payload, versions.V2MaxBatch)
			if err != nil {
				tb.Fatalf("frame %q: %v", payload, err)
			}
			for _, op := range env.Ops {
				ops = append(ops, op)
			}
		case wstest.OpClose:
			code := binary.BigEndian.Uint16(payload)
			_ = p.AnswerClose(code)
			return ops, websocket.StatusCode(code)
		default:
			tb.Fatalf("unexpected frame opcode %#x", op)
		}
	}
}

// numbered is the i-th test op of giver g, padded to size bytes.
func numbered(g, i, size int) []byte {
	op := fmt.Appendf(nil, `{"g":%d,"i":%d,"pad":"`, g, i)
	op = append(op, bytes.Repeat([]byte{'.'}, max(size-len(op)-2, 0))...)
	return append(op, `"}`...)
}

// number reads numbered's g and i back.
func number(tb testing.TB, op []byte) (g, i int) {
	tb.Helper()
	var n struct{ G, I int }
	if err := json.Unmarshal(op, &n); err != nil {
		tb.Fatalf("op %q: %v", op, err)
	}
	return n.G, n.I
}

func waitDone(tb testing.TB, o *Outbox) {
	tb.Helper()
	select {
	case <-o.Done():
	case <-time.After(10 * time.Second):
		tb.Fatal("the connection was not closed")
	}
}

func TestFrameAtHeaderLengths(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 200000} {
		payload := bytes.Repeat([]byte{'x'}, n)
		frame := textFrame(payload)
		wantHeader := 2
		switch {
		case n > 65535:
			wantHeader = 10
		case n > 125:
			wantHeader = 4
		}
		if len(frame) != n+wantHeader {
			t.Errorf("payload %d: frame of %d bytes, want %d", n, len(frame), n+wantHeader)
			continue
		}
		op, got, err := wstest.ReadFrame(bufio.NewReader(bytes.NewReader(frame)))
		if err != nil || op != wstest.OpText || !bytes.Equal(got, payload) {
			t.Errorf("payload %d: read back op %#x, %d bytes, err %v", n, op, len(got), err)
		}
	}
}

// TestBackedUpKeepsOrder: frames given while the peer reads nothing wait,
// and every one arrives, whole and in order, once it reads; frames written
// through io.Writer (the WebSocket library's) keep their place in line
// too. Idle again, the outbox writes the next frame at once.
func TestBackedUpKeepsOrder(t *testing.T) {
	o, p := pair(t, config(v1, 8<<20), 128<<10)
	const frames = 3000
	sawWaiting := false
	for i := range frames {
		if i%100 == 99 {
			// A control-sized frame from the library's buffer, which is
			// reused: the outbox must copy what it cannot write now.
			buf := textFrame(numbered(0, i, 100))
			if _, err := o.Write(buf); err != nil {
				t.Fatal(err)
			}
			clear(buf)
		} else if err := o.Send(Prepare(v1, numbered(0, i, 1000))); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if o.Queued() > 0 {
			sawWaiting = true
		}
	}
	if !sawWaiting {
		t.Fatal("3 MB given to a peer that reads nothing never waited: the test proves nothing")
	}
	for i := range frames {
		op, payload, err := p.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if _, n := number(t, payload); op != wstest.OpText || n != i {
			t.Fatalf("frame %d: got op %#x, number %d", i, op, n)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for o.Queued() > 0 || o.flushingNow() {
		if time.Now().After(deadline) {
			t.Fatal("not idle after everything was read")
		}
		time.Sleep(time.Millisecond)
	}
	if err := o.Send(Prepare(v1, numbered(0, frames, 10))); err != nil || o.Queued() != 0 {
		t.Fatalf("a frame to an idle socket waited (%v, %d bytes queued)", err, o.Queued())
	}
	if _, payload, err := p.ReadFrame(); err != nil {
		t.Fatal(err)
	} else if _, n := number(t, payload); n != frames {
		t.Fatalf("last frame: %d", n)
	}
}

// flushingNow reports whether a flusher runs.
func (o *Outbox) flushingNow() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.flushing
}

// TestFullClosesSlowAtItsBound: a client that stops reading is closed as
// a slow consumer when, and only when, what its outbox holds would pass
// the bound in bytes. It gets everything given before, in order, then
// the notice, then the close with 4008; nothing given after.
func TestFullClosesSlowAtItsBound(t *testing.T) {
	for _, codec := range []versions.Codec{v1, v2} {
		t.Run(fmt.Sprintf("batch%d", codec.MaxBatch()), func(t *testing.T) {
			const limit, size = 64 << 10, 1000
			o, p := pair(t, config(codec, limit), 128<<10)
			accepted := 0
			for {
				if accepted == 100000 {
					t.Fatal("100 MB given to a peer that reads nothing, never full")
				}
				before := o.Queued()
				err := o.Send(Prepare(codec, numbered(0, accepted, size)))
				if err == nil {
					accepted++
					if q := o.Queued(); q > limit {
						t.Fatalf("%d bytes queued, past the bound of %d", q, limit)
					}
					continue
				}
				if !errors.Is(err, ErrFull) {
					t.Fatalf("send %d: %v, want ErrFull", accepted, err)
				}
				if before+size <= limit {
					t.Fatalf("full with %d bytes queued: %d more fit under %d", before, size, limit)
				}
				break
			}
			if err := o.Send(Prepare(codec, numbered(0, accepted, size))); !errors.Is(err, ErrClosed) {
				t.Fatalf("send after the slow close: %v, want ErrClosed", err)
			}
			ops, code := readUntilClose(t, p, codec)
			if code != StatusSlowConsumer {
				t.Fatalf("closed with %d, want 4008", code)
			}
			if len(ops) != accepted+1 {
				t.Fatalf("%d ops arrived, want the %d accepted and the notice", len(ops), accepted)
			}
			for i, op := range ops[:accepted] {
				if _, n := number(t, op); n != i {
					t.Fatalf("op %d arrived as number %d", i, n)
				}
			}
			if !bytes.Equal(ops[accepted], notice) {
				t.Fatalf("last op %q, want the notice", ops[accepted])
			}
			waitDone(t, o)
		})
	}
}

// TestCloseRacingSends: many goroutines give ops while a close is asked
// for. Every op an outbox took arrives, in each giver's order, before the
// notice, which is last; everything given after the close is refused.
func TestCloseRacingSends(t *testing.T) {
	for _, codec := range []versions.Codec{v1, v2} {
		t.Run(fmt.Sprintf("batch%d", codec.MaxBatch()), func(t *testing.T) {
			o, p := pair(t, config(codec, 256<<20), 0)
			const givers = 8
			var accepted [givers]int
			var wg sync.WaitGroup
			var half sync.WaitGroup
			half.Add(givers)
			for g := range givers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						if i == 500 {
							half.Done()
						}
						err := o.Send(Prepare(codec, numbered(g, i, 50+i%300)))
						if err != nil {
							if !errors.Is(err, ErrClosed) {
								t.Errorf("giver %d: %v", g, err)
							}
							if i < 500 {
								half.Done()
							}
							return
						}
						accepted[g]++
						if i%200 == 0 {
							time.Sleep(time.Millisecond) // let it drain: the next goes directly
						}
					}
				}()
			}
			type result struct {
				ops  [][]byte
				code websocket.StatusCode
			}
			read := make(chan result)
			go func() {
				ops, code := readUntilClose(t, p, codec)
				read <- result{ops, code}
			}()
			half.Wait()
			o.Close(websocket.StatusGoingAway, "bye", []byte(`{"op":"reconnect"}`), []byte(`{"op":"closing"}`))
			wg.Wait()
			res := <-read
			if res.code != websocket.StatusGoingAway {
				t.Fatalf("closed with %d", res.code)
			}
			n := len(res.ops)
			if n < 2 || string(res.ops[n-2]) != `{"op":"reconnect"}` || string(res.ops[n-1]) != `{"op":"closing"}` {
				t.Fatalf("the notices are not last: %q", res.ops[max(n-3, 0):])
			}
			var next [givers]int
			for _, op := range res.ops[:n-2] {
				g, i := number(t, op)
				if i != next[g] {
					t.Fatalf("giver %d: op %d arrived when %d was due", g, i, next[g])
				}
				next[g]++
			}
			if next != accepted {
				t.Fatalf("arrived per giver %v, accepted %v", next, accepted)
			}
			waitDone(t, o)
		})
	}
}

// TestStuckPeerTimesOut: a peer that takes nothing for the timeout fails
// the outbox, which closes the connection and drops the rest.
func TestStuckPeerTimesOut(t *testing.T) {
	cfg := config(v1, 64<<20)
	cfg.Timeout = 200 * time.Millisecond
	// A receive buffer this small stays full: the kernel finds no room
	// by compacting it.
	o, p := pair(t, cfg, 8<<10)
	frame := Prepare(v1, numbered(0, 0, 4000))
	for i := 0; o.Queued() < 8*len(frame); i++ {
		if i == 100000 {
			t.Fatal("400 MB given to a peer that reads nothing, and nothing waits")
		}
		if err := o.Send(frame); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !errors.Is(o.Send(frame), ErrClosed) {
		if time.Now().After(deadline) {
			t.Fatal("the outbox did not fail within 5 s of a 200 ms timeout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if q := o.Queued(); q != 0 {
		t.Fatalf("a failed outbox holds %d bytes", q)
	}
	// The peer sees the connection end once it reads what was sent.
	_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, p.R); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the peer's connection stayed open after the outbox failed")
		}
	}
	if _, err := o.Write([]byte("x")); err == nil {
		t.Fatal("a failed outbox took a write")
	}
	o.Close(websocket.StatusNormalClosure, "")
	waitDone(t, o)
}

// TestSendWaitWaitsForRoom: a replay larger than the outbox waits for the
// socket to drain instead of failing, fills at most half the bound, and
// goes out in full frames.
func TestSendWaitWaitsForRoom(t *testing.T) {
	const limit = 16 << 10
	o, p := pair(t, config(v2, limit), 32<<10)
	ops := make([][]byte, 2000)
	for i := range ops {
		ops[i] = numbered(0, i, 200) // 400 KB in all, 25 times the bound
	}
	waited := false
	frames, got := 0, 0
	done := make(chan error, 1)
	go func() {
		_ = p.SetReadDeadline(time.Now().Add(20 * time.Second))
		for got < len(ops) {
			_, payload, err := p.ReadFrame()
			if err != nil {
				done <- err
				return
			}
			env, err := versions.ReadEnvelope(payload, versions.V2MaxBatch)
			if err != nil {
				done <- err
				return
			}
			frames++
			for _, op := range env.Ops {
				if _, n := number(t, op); n != got {
					done <- fmt.Errorf("op %d arrived when %d was due", n, got)
					return
				}
				got++
			}
			if frames%8 == 0 {
				time.Sleep(time.Millisecond) // a slow reader
			}
		}
		done <- nil
	}()
	for i := 0; i < len(ops); i += 64 {
		start := time.Now()
		if err := o.SendWait(5*time.Second, ops[i:min(i+64, len(ops))]...); err != nil {
			t.Fatalf("send wait at %d: %v", i, err)
		}
		waited = waited || time.Since(start) > 500*time.Microsecond
		if q := o.Queued(); q > limit/2+200 {
			t.Fatalf("a replay filled %d bytes, past half the bound", q)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !waited {
		t.Error("the replay never waited for room: the test proves nothing")
	}
	t.Logf("%d ops in %d frames", got, frames)
	if perFrame := float64(got) / float64(frames); perFrame < 4 {
		t.Errorf("%d ops in %d frames: the queued ops were not batched", got, frames)
	}
}

// TestSendWaitTimesOutAsSlow: a replay to a client that reads nothing
// waits for the timeout, then closes it as a slow consumer.
func TestSendWaitTimesOutAsSlow(t *testing.T) {
	o, p := pair(t, config(v2, 16<<10), 8<<10)
	ops := make([][]byte, 2000)
	for i := range ops {
		ops[i] = numbered(0, i, 200)
	}
	start := time.Now()
	if err := o.SendWait(200*time.Millisecond, ops...); !errors.Is(err, ErrFull) {
		t.Fatalf("send wait to a stuck client: %v, want ErrFull", err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("gave up after %s, before the timeout", took)
	}
	got, code := readUntilClose(t, p, v2)
	if code != StatusSlowConsumer || len(got) == 0 || !bytes.Equal(got[len(got)-1], notice) {
		t.Fatalf("closed with %d after %d ops", code, len(got))
	}
	for i, op := range got[:len(got)-1] {
		if _, n := number(t, op); n != i {
			t.Fatalf("op %d arrived as %d", i, n)
		}
	}
	waitDone(t, o)
}

// TestEarlyBytesKept: a client frame that arrives together with the
// upgrade request reaches the WebSocket reader intact.
func TestEarlyBytesKept(t *testing.T) {
	got := make(chan string, 1)
	cfg := config(v1, 1<<20)
	cfg.ReadBuffer = 64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := Accept(w, r, nil, &cfg, nil)
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		_, data, err := c.Read(context.Background())
		if err != nil {
			got <- "read: " + err.Error()
			return
		}
		got <- string(data)
		c.CloseNow()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The upgrade request and a masked text frame in one write.
	payload := strings.Repeat("early bird ", 20)
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	frame := []byte{0x81, 0x80 | 126, byte(len(payload) >> 8), byte(len(payload)), 1, 2, 3, 4}
	for i := range len(payload) {
		frame = append(frame, payload[i]^[]byte{1, 2, 3, 4}[i%4])
	}
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != payload {
			t.Fatalf("server read %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server read nothing")
	}
}

// TestGonePeerGetsNoHandshake: once the peer is known to be gone, the
// close writes what is queued and ends the connection without a close
// frame; without Gone the same close sends one.
func TestGonePeerGetsNoHandshake(t *testing.T) {
	for _, gone := range []bool{false, true} {
		o, p := pair(t, config(v1, 1<<20), 0)
		if err := o.Send(Prepare(v1, numbered(0, 0, 100))); err != nil {
			t.Fatal(err)
		}
		if gone {
			o.Gone()
		}
		o.Close(websocket.StatusNormalClosure, "")
		_ = p.SetReadDeadline(time.Now().Add(10 * time.Second))
		op, _, err := p.ReadFrame()
		if err != nil || op != wstest.OpText {
			t.Fatalf("gone %v: first frame %#x, %v; want the queued op", gone, op, err)
		}
		op, _, err = p.ReadFrame()
		var ne net.Error
		switch {
		case gone && err == nil:
			t.Fatalf("gone: a frame %#x after the queued op, want the connection closed", op)
		case gone && errors.As(err, &ne) && ne.Timeout():
			t.Fatal("gone: the connection stayed open")
		case !gone && (err != nil || op != wstest.OpClose):
			t.Fatalf("not gone: %#x, %v; want a close frame", op, err)
		}
		if !gone {
			_ = p.AnswerClose(uint16(websocket.StatusNormalClosure))
		}
		waitDone(t, o)
	}
}
