package ua

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// smallBuffers hands the WebSocket library smaller read and write buffers
// than net/http's hijack does (4 KiB each): an idle session then holds
// half the memory. Client frames are small; a larger frame is read in
// several calls, and a larger write goes straight to the connection.
type smallBuffers struct {
	http.ResponseWriter
	size int
}

// Hijack implements http.Hijacker, keeping any bytes net/http had already
// read past the request.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	n := brw.Reader.Buffered()
	if n == 0 {
		return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, w.size), bufio.NewWriterSize(conn, w.size)), nil
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
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(conn, w.size)), nil
}

// Unwrap lets http.ResponseController reach the original writer.
func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }
