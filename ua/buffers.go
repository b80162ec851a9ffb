package ua

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"time"
)

// smallBuffers hands the WebSocket library a smaller read buffer than
// net/http's hijack does (4 KiB), and a write side that is the session's
// wire: an idle session then holds a fraction of the memory. Client frames
// are small; a larger frame is read in several calls. The library writes
// only control frames (the server's data frames go straight to the wire),
// which fit the small write buffer whole.
type smallBuffers struct {
	http.ResponseWriter
	size    int
	timeout time.Duration
	wire    *wire // set by Hijack
}

// controlBuffer holds the largest control frame (a 125-byte payload and
// its header), so each reaches the wire in one piece.
const controlBuffer = 256

// Hijack implements http.Hijacker, keeping any bytes net/http had already
// read past the request.
func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.wire = newWire(conn, w.timeout)
	n := brw.Reader.Buffered()
	if n == 0 {
		return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, w.size), bufio.NewWriterSize(w.wire, controlBuffer)), nil
	}
	// The client's first frame may have arrived with the request. The
	// WebSocket library keeps only what is in the returned reader's buffer
	// (it re-reads the connection after it), so put those bytes there.
	early, _ := brw.Reader.Peek(n)
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(w.size, n))
	if _, err := r.Peek(n); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(w.wire, controlBuffer)), nil
}

// Unwrap lets http.ResponseController reach the original writer.
func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }
