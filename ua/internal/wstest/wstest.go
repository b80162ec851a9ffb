// Package wstest is a raw WebSocket client for the UA's tests and
// benchmarks: it upgrades a plain TCP connection by hand and reads the
// server's frames as bytes, so that a test sees exactly what was written
// and a benchmark's readers cost little.
package wstest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
)

// Peer is a client's end of a WebSocket connection, the upgrade done.
type Peer struct {
	net.Conn
	// R reads what follows the upgrade response.
	R *bufio.Reader
}

// Dial connects to the server at addr (host:port), sets the connection's
// receive buffer to rcvbuf bytes (0: the system's), and upgrades it on
// path /ws. The connection is closed when the test ends.
func Dial(tb testing.TB, addr string, rcvbuf int) *Peer {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if rcvbuf > 0 {
		_ = c.(*net.TCPConn).SetReadBuffer(rcvbuf)
	}
	const req = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		tb.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		tb.Fatalf("upgrade: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("upgrade: %s", resp.Status)
	}
	return &Peer{Conn: c, R: r}
}

// Discard reads and drops everything p receives, on a goroutine of its
// own, until the connection ends. Its buffer is allocated before it
// returns: reading allocates nothing.
func (p *Peer) Discard() {
	buf := make([]byte, 16<<10)
	go func() {
		for {
			if _, err := p.R.Read(buf); err != nil {
				return
			}
		}
	}()
}

// Frame opcodes the server writes.
const (
	OpText  = 0x81 // a whole text frame (FIN set)
	OpClose = 0x88
)

// ReadFrame reads one unmasked server frame and returns its first byte
// (FIN and opcode) and payload.
func (p *Peer) ReadFrame() (byte, []byte, error) {
	return ReadFrame(p.R)
}

// ReadFrame reads one unmasked frame from r and returns its first byte
// (FIN and opcode) and payload.
func ReadFrame(r *bufio.Reader) (byte, []byte, error) {
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
	if h[1]&0x80 != 0 {
		return 0, nil, errMasked
	}
	payload := make([]byte, n)
	_, err := io.ReadFull(r, payload)
	return h[0], payload, err
}

var errMasked = errors.New("wstest: a masked server frame")

// AnswerClose writes a masked close frame with code, as a client answers
// the server's close.
func (p *Peer) AnswerClose(code uint16) error {
	key := [4]byte{1, 2, 3, 4}
	c := [2]byte{byte(code >> 8), byte(code)}
	_, err := p.Write([]byte{0x88, 0x82, key[0], key[1], key[2], key[3], c[0] ^ key[0], c[1] ^ key[1]})
	return err
}
