package bare

import (
	"bufio"
	"crypto/sha1" //nolint:gosec // RFC 6455 fixes SHA-1 for the handshake
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// wsGUID is the key suffix of RFC 6455 section 1.3.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a client's
// Sec-WebSocket-Key: base64 of the SHA-1 of the key and the protocol's
// GUID.
func AcceptKey(key string) string {
	h := sha1.New() //nolint:gosec // required by the protocol
	h.Write([]byte(key))
	h.Write([]byte(wsGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// headerHas reports whether a comma-separated header holds token
// (case-insensitively).
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// checkUpgrade validates a WebSocket upgrade request and returns the
// client's key.
func checkUpgrade(r *http.Request) (string, error) {
	switch {
	case r.Method != http.MethodGet:
		return "", errors.New("method must be GET")
	case !headerHas(r.Header, "Connection", "upgrade"):
		return "", errors.New("missing Connection: upgrade")
	case !headerHas(r.Header, "Upgrade", "websocket"):
		return "", errors.New("missing Upgrade: websocket")
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return "", errors.New("Sec-WebSocket-Version must be 13")
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", errors.New("bad Sec-WebSocket-Key")
	}
	return key, nil
}

// AppendFrame appends one unmasked, final server frame to b.
func AppendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// errFrame is a protocol violation by the client.
var errFrame = errors.New("bare: bad frame")

// frame is one frame as read.
type frame struct {
	fin     bool
	op      byte
	payload []byte
}

// readFrame reads one client frame (which must be masked) into buf's
// storage, unmasking it. Payloads over limit are refused.
func readFrame(r *bufio.Reader, buf []byte, limit int) (frame, []byte, error) {
	var hdr [14]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return frame{}, buf, err
	}
	f := frame{fin: hdr[0]&0x80 != 0, op: hdr[0] & 0x0F}
	if hdr[0]&0x70 != 0 {
		return f, buf, fmt.Errorf("%w: reserved bits set", errFrame)
	}
	if hdr[1]&0x80 == 0 {
		return f, buf, fmt.Errorf("%w: client frame not masked", errFrame)
	}
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, hdr[2:4]); err != nil {
			return f, buf, err
		}
		n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
	case 127:
		if _, err := io.ReadFull(r, hdr[2:10]); err != nil {
			return f, buf, err
		}
		n = binary.BigEndian.Uint64(hdr[2:10])
	}
	if f.op >= opClose && (n > 125 || !f.fin) {
		return f, buf, fmt.Errorf("%w: bad control frame", errFrame)
	}
	if n > uint64(limit) {
		return f, buf, fmt.Errorf("%w: frame of %d bytes over the limit", errFrame, n)
	}
	var mask [4]byte
	if _, err := io.ReadFull(r, mask[:]); err != nil {
		return f, buf, err
	}
	start := len(buf)
	buf = append(buf, make([]byte, n)...)
	p := buf[start:]
	if _, err := io.ReadFull(r, p); err != nil {
		return f, buf, err
	}
	unmask(p, mask)
	f.payload = p
	return f, buf, nil
}

// unmask XORs p with the 4-byte mask key, eight bytes at a time.
func unmask(p []byte, key [4]byte) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32)<<32 | uint64(k32)
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k64)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}
