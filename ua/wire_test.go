package ua

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// tcpPair returns the two ends of a loopback TCP connection with small
// socket buffers (the client's receive buffer rcvbuf bytes), so that a
// peer that reads nothing backs the writer up after kilobytes, not
// megabytes.
func tcpPair(t *testing.T, rcvbuf int) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	_ = server.(*net.TCPConn).SetWriteBuffer(16 << 10)
	_ = client.(*net.TCPConn).SetReadBuffer(rcvbuf)
	return server, client
}

// readFrame reads one unmasked server frame and returns its opcode byte and
// payload.
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return h[0], p, err
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
		op, got, err := readFrame(bufio.NewReader(bytes.NewReader(frame)))
		if err != nil || op != 0x81 || !bytes.Equal(got, payload) {
			t.Errorf("payload %d: read back op %#x, %d bytes, err %v", n, op, len(got), err)
		}
	}
}

// numbered is the i-th test frame: its number, padded to size bytes.
func numbered(i, size int) []byte {
	p := fmt.Appendf(nil, "%08d", i)
	return textFrame(append(p, bytes.Repeat([]byte{'.'}, size-len(p))...))
}

// TestWireKeepsOrderWhenBackedUp: frames given while the peer reads
// nothing wait, and every one arrives, whole and in order, once it reads;
// frames written through io.Writer (the WebSocket library's) keep their
// place in line too.
func TestWireKeepsOrderWhenBackedUp(t *testing.T) {
	server, client := tcpPair(t, 128<<10)
	w := newWire(server, 10*time.Second)
	const frames = 3000
	sawWaiting := false
	for i := range frames {
		if i%100 == 99 {
			// A control-sized frame from the library's buffer, which is
			// reused: the wire must copy what it cannot write now.
			buf := numbered(i, 100)
			if _, err := w.Write(buf); err != nil {
				t.Fatal(err)
			}
			clear(buf)
		} else if !w.send(numbered(i, 1000), 0) {
			t.Fatalf("frame %d refused with no limit", i)
		}
		if w.waiting() > 0 {
			sawWaiting = true
		}
	}
	if !sawWaiting {
		t.Fatal("3 MB given to a peer that reads nothing never waited: the test proves nothing")
	}
	r := bufio.NewReader(client)
	for i := range frames {
		op, p, err := readFrame(r)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if op != 0x81 || string(p[:8]) != fmt.Sprintf("%08d", i) {
			t.Fatalf("frame %d: got op %#x %q", i, op, p[:8])
		}
	}
	if !w.waitIdle(nil) || w.waiting() != 0 {
		t.Fatal("wire not idle after everything was read")
	}
	// Idle again: the next frame goes out directly.
	w.send(numbered(frames, 10), 0)
	if w.waiting() != 0 {
		t.Fatal("a frame to an idle socket waited")
	}
	if _, p, err := readFrame(r); err != nil || string(p[:8]) != fmt.Sprintf("%08d", frames) {
		t.Fatalf("last frame: %q, %v", p, err)
	}
}

// TestWireLimitRefuses: with a limit, a peer that reads nothing is refused
// once that many frames wait.
func TestWireLimitRefuses(t *testing.T) {
	server, _ := tcpPair(t, 128<<10)
	w := newWire(server, 10*time.Second)
	frame := numbered(0, 4000)
	for range 100000 {
		if !w.send(frame, 16) {
			if got := w.waiting(); got != 16 {
				t.Fatalf("refused with %d waiting, want 16", got)
			}
			return
		}
	}
	t.Fatal("400 MB given to a peer that reads nothing, never refused")
}

// TestWireTimeoutFailsStuckPeer: a peer that takes nothing for the write
// timeout fails the wire, which closes the connection and drops the rest.
func TestWireTimeoutFailsStuckPeer(t *testing.T) {
	// A receive buffer this small stays full: the kernel finds no room
	// by compacting it.
	server, client := tcpPair(t, 8<<10)
	w := newWire(server, 200*time.Millisecond)
	frame := numbered(0, 4000)
	for i := 0; w.waiting() < 8; i++ {
		if i == 100000 {
			t.Fatal("400 MB given to a peer that reads nothing, and nothing waits")
		}
		w.send(frame, 0)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		err := w.err
		w.mu.Unlock()
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the wire did not fail within 5 s of a 200 ms write timeout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if w.waiting() != 0 {
		t.Fatal("a failed wire still holds frames")
	}
	// The peer sees the connection end once it reads what was sent.
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, client); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the peer's connection stayed open after the wire failed")
		}
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("a failed wire accepted a write")
	}
}

// TestWireWithoutDescriptor: over a connection with no file descriptor
// (net.Pipe), frames are written by the flusher, in order.
func TestWireWithoutDescriptor(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	w := newWire(server, 5*time.Second)
	if w.rc != nil {
		t.Fatal("net.Pipe has a raw connection?")
	}
	for i := range 50 {
		w.send(numbered(i, 300), 0)
	}
	r := bufio.NewReader(client)
	for i := range 50 {
		_, p, err := readFrame(r)
		if err != nil || string(p[:8]) != fmt.Sprintf("%08d", i) {
			t.Fatalf("frame %d: %q, %v", i, p, err)
		}
	}
	if !w.waitIdle(nil) {
		t.Fatal("not idle")
	}
}

// TestWireSealDropsData: after seal, data frames are dropped but the
// library's frames (the close) still go out.
func TestWireSealDropsData(t *testing.T) {
	server, client := tcpPair(t, 128<<10)
	w := newWire(server, 5*time.Second)
	w.send(numbered(1, 10), 0)
	w.seal()
	w.send(numbered(2, 10), 0)
	if _, err := w.Write(numbered(3, 10)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(client)
	for _, want := range []int{1, 3} {
		_, p, err := readFrame(r)
		if err != nil || string(p[:8]) != fmt.Sprintf("%08d", want) {
			t.Fatalf("want frame %d, got %q, %v", want, p, err)
		}
	}
}

// TestV2OffersArriveOnceInOrder: ops given to a v2 session from several
// goroutines at once, some written directly and some queued and batched
// by the writer, each arrive exactly once and in each giver's order.
func TestV2OffersArriveOnceInOrder(t *testing.T) {
	v := versions.Default().All()[1]
	_, ss, c := sessionPair(t, v, 100000)
	const givers, each = 8, 2000
	var wg sync.WaitGroup
	for g := range givers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ss.enqueue(fmt.Appendf(nil, `{"op":"t","g":%d,"i":%d}`, g, i))
				if i%500 == 0 {
					time.Sleep(time.Millisecond) // let the queue drain: the next goes directly
				}
			}
		}()
	}
	next := make([]int, givers)
	frames, ops := 0, 0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ops < givers*each {
		_, frame, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %d ops: %v", ops, err)
		}
		frames++
		env, err := versions.ReadEnvelope(frame, versions.V2MaxBatch)
		if err != nil {
			t.Fatalf("frame %q: %v", frame, err)
		}
		for _, raw := range env.Ops {
			var op struct{ G, I int }
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			if op.I != next[op.G] {
				t.Fatalf("giver %d: op %d arrived when %d was due", op.G, op.I, next[op.G])
			}
			next[op.G]++
			ops++
		}
	}
	wg.Wait()
	if frames == ops {
		t.Logf("%d ops in %d frames: none batched", ops, frames)
	}
}

// TestV2CloseDuringDirectWrite: a close asked for while an op is being
// written directly (the writer's role is held, so no writer starts) is
// performed when the direct write gives the role up.
func TestV2CloseDuringDirectWrite(t *testing.T) {
	_, ss, c := sessionPair(t, versions.Default().All()[1], 64)
	if !ss.writing.CompareAndSwap(false, true) {
		t.Fatal("a writer already runs")
	}
	ss.closeWith(websocket.StatusNormalClosure, "bye")
	ss.releaseWriter()
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	select {
	case <-ss.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the close was never performed")
	}
}
