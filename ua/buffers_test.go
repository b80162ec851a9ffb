package ua

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSmallBuffersKeepEarlyBytes: a client frame that arrives together
// with the upgrade request reaches the WebSocket reader intact.
func TestSmallBuffersKeepEarlyBytes(t *testing.T) {
	got := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(&smallBuffers{ResponseWriter: w, size: 64, timeout: time.Second}, r, nil)
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
