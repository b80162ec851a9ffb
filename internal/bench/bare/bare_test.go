package bare

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// start serves a bare server on a loopback port for the test and returns
// its ws:// URL.
func start(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "ws://" + ln.Addr().String() + "/v1/ws"
}

func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// read returns the next op of c as a map.
func read(t testing.TB, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("frame type %v, want text", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

func write(t testing.TB, c *websocket.Conn, op string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(op)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func TestAcceptKeyRFCExample(t *testing.T) {
	// RFC 6455 section 1.3.
	if got, want := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Fatalf("AcceptKey = %q, want %q", got, want)
	}
}

func TestReadyJoinSayFanOut(t *testing.T) {
	url := start(t, New())
	a, b, c := dial(t, url), dial(t, url), dial(t, url)
	for _, x := range []*websocket.Conn{a, b, c} {
		if m := read(t, x); m["op"] != "ready" || m["version"] != "v1" {
			t.Fatalf("first op %v, want ready", m)
		}
	}
	write(t, a, `{"op":"join","ref":"j1","ch":"room"}`)
	write(t, b, `{"op":"join","ref":"j2","ch":"room"}`)
	if m := read(t, a); m["op"] != "ok" || m["ref"] != "j1" || m["ch"] != "room" {
		t.Fatalf("join reply %v", m)
	}
	if m := read(t, b); m["op"] != "ok" || m["ref"] != "j2" {
		t.Fatalf("join reply %v", m)
	}
	data := `{"p":1,"n":2,"t":3,"x":"` + strings.Repeat("x", 300) + `"}` // 16-bit length frames
	write(t, a, `{"op":"say","ref":"s1","ch":"room","text":"hi","data":`+data+`}`)
	ok := read(t, a)
	if ok["op"] != "ok" || ok["ref"] != "s1" || ok["id"] == "" {
		t.Fatalf("say reply %v", ok)
	}
	for _, x := range []*websocket.Conn{a, b} {
		m := read(t, x)
		if m["op"] != "msg" || m["ch"] != "room" || m["text"] != "hi" || m["id"] != ok["id"] {
			t.Fatalf("delivery %v", m)
		}
		got, _ := json.Marshal(m["data"])
		var want any
		_ = json.Unmarshal([]byte(data), &want)
		wantB, _ := json.Marshal(want)
		if !bytes.Equal(got, wantB) {
			t.Fatalf("data %s, want %s", got, wantB)
		}
	}
	// c never joined: the next thing it hears is its own pong.
	write(t, c, `{"op":"ping","ref":"p"}`)
	if m := read(t, c); m["op"] != "pong" || m["ref"] != "p" {
		t.Fatalf("ping reply %v", m)
	}
	write(t, a, `{"op":"leave","ref":"l","ch":"room"}`)
	if m := read(t, a); m["op"] != "ok" {
		t.Fatalf("leave reply %v", m)
	}
	write(t, b, `{"op":"say","ref":"s2","ch":"room","text":"alone"}`)
	if m := read(t, b); m["op"] != "ok" {
		t.Fatalf("say reply %v", m)
	}
	if m := read(t, b); m["op"] != "msg" || m["text"] != "alone" {
		t.Fatalf("delivery %v", m)
	}
	write(t, a, `{"op":"nope","ref":"x"}`)
	if m := read(t, a); m["op"] != "error" || m["code"] != "unknown_op" {
		t.Fatalf("unknown op reply %v", m)
	}
}

func TestLargeFragmentedAndPing(t *testing.T) {
	url := start(t, New())
	a := dial(t, url)
	read(t, a) // ready
	write(t, a, `{"op":"join","ref":"j","ch":"big"}`)
	read(t, a)
	// 70,000 bytes: a 64-bit length on the way back, and written by the
	// client in several frames.
	text := strings.Repeat("y", 70000)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w, err := a.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	op := []byte(`{"op":"say","ref":"s","ch":"big","text":"` + text + `"}`)
	for len(op) > 0 {
		n := min(len(op), 20000)
		if _, err := w.Write(op[:n]); err != nil {
			t.Fatal(err)
		}
		op = op[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Over the default 64 KiB read limit: the server refuses the frame
	// and closes with a protocol error.
	a.SetReadLimit(1 << 20)
	_, _, err = a.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusProtocolError {
		t.Fatalf("read after oversized message: %v, want close 1002", err)
	}

	s2 := New()
	s2.ReadLimit = 1 << 20
	url2 := start(t, s2)
	b := dial(t, url2)
	b.SetReadLimit(1 << 20)
	read(t, b)
	write(t, b, `{"op":"join","ref":"j","ch":"big"}`)
	read(t, b)
	if err := b.Write(ctx, websocket.MessageText, []byte(`{"op":"say","ref":"s","ch":"big","text":"`+text+`"}`)); err != nil {
		t.Fatal(err)
	}
	read(t, b) // ok
	if m := read(t, b); m["text"] != text {
		t.Fatalf("large message came back with %d characters", len(m["text"].(string)))
	}
	// The server answers WebSocket pings (coder/websocket waits for the
	// pong), which needs a reader running.
	go func() {
		for {
			if _, _, err := b.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func TestSlowConsumerIsClosed(t *testing.T) {
	s := New()
	s.Queue = 16
	url := start(t, s)
	fast := dial(t, url)
	read(t, fast)
	// The slow client is a raw TCP connection that never reads, so its
	// socket buffers fill and then its queue.
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/v1/ws")
	d := net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
		// A small receive buffer fills after a few messages.
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if err := req.Write(raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(raw), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("upgrade answer %d %v", resp.StatusCode, resp.Header)
	}
	// Join from the raw client: a masked text frame.
	join := []byte(`{"op":"join","ch":"flood"}`)
	frame := []byte{0x81, 0x80 | byte(len(join)), 0, 0, 0, 0}
	if _, err := raw.Write(append(frame, join...)); err != nil {
		t.Fatal(err)
	}
	// Poll until the server has the slow client in the room. The fast
	// client only publishes (the bare server needs no join for that).
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.RLock()
		n := 0
		if r := s.rooms["flood"]; r != nil {
			n = len(r.members)
		}
		s.mu.RUnlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("room has %d members, want 1", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	big := strings.Repeat("z", 60000)
	i := 0
	t0 := time.Now()
	for ; s.Sessions() == 2; i++ {
		if i > 10000 {
			t.Fatal("the slow client was never closed")
		}
		if err := fast.Write(context.Background(), websocket.MessageText, []byte(`{"op":"say","ch":"flood","text":"`+big+`"}`)); err != nil {
			t.Fatal(err)
		}
		// Read the say's ok before the next: the fast client's own queue
		// then never holds more than one frame, however late its
		// writer runs on a busy machine.
		if _, _, err := fast.Read(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("closed after %d messages in %v", i, time.Since(t0))
	if n := s.Sessions(); n != 1 {
		t.Fatalf("%d sessions, want the fast one only", n)
	}
}

func TestRefusesBadUpgrades(t *testing.T) {
	url := start(t, New())
	httpURL := "http" + strings.TrimPrefix(url, "ws")
	resp, err := http.Get(httpURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain GET: %d, want 400", resp.StatusCode)
	}
	resp, err = http.Get(strings.TrimSuffix(httpURL, "/v1/ws") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}

func TestUnmaskMatchesBytewise(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for n := range 40 {
		p := make([]byte, n)
		want := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
			want[i] = p[i] ^ key[i%4]
		}
		unmask(p, key)
		if !bytes.Equal(p, want) {
			t.Fatalf("length %d: %x, want %x", n, p, want)
		}
	}
}
