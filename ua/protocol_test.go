package ua_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUnmaskedClientFrameIsAProtocolError: a client frame without a mask
// breaks RFC 6455; the session is closed with 1002.
func TestUnmaskedClientFrameIsAProtocolError(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	url, _ := s.startUA(nil)
	addr := strings.TrimPrefix(strings.TrimSuffix(url, "/v1/ws"), "ws://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	tok := s.token("alice", []string{"*"}, []string{"*"})
	req := "GET /v1/ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	payload := []byte(`{"op":"ping"}`)
	frame := append([]byte{0x81, byte(len(payload))}, payload...) // FIN text, no mask bit
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	for {
		b0, err := br.ReadByte()
		if err != nil {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		n, err := br.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		size := int(n & 0x7f)
		switch size {
		case 126:
			var ext [2]byte
			_, _ = br.Read(ext[:])
			size = int(binary.BigEndian.Uint16(ext[:]))
		case 127:
			t.Fatal("unexpected huge frame")
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatal(err)
		}
		if b0&0x0f == 0x8 { // close
			if code := binary.BigEndian.Uint16(body); code != 1002 {
				t.Fatalf("closed with %d %q, want 1002", code, body[2:])
			}
			return
		}
	}
}
