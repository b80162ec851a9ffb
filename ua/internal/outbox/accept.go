package outbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// Accept upgrades the request to a WebSocket connection and returns it
// with its outbox, which every write to the connection goes through: the
// library writes its control frames into the outbox (through a buffer
// that holds the largest of them whole), and reads through a buffer of
// cfg.ReadBuffer bytes, smaller than net/http's, so that an idle
// connection holds little. The connection must have a file descriptor
// (TCP or a unix socket). clock is the session's for a version with
// clocks (nil otherwise). On error the request has been answered.
func Accept(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions, cfg *Config, clock *versions.Clock) (*websocket.Conn, *Outbox, error) {
	h := &hijacker{ResponseWriter: w, cfg: cfg, clock: clock}
	ws, err := websocket.Accept(h, r, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("upgrade: %w", err)
	}
	h.out.ws = ws
	return ws, h.out, nil
}

// hijacker gives the WebSocket library its buffers at the hijack: a read
// buffer of the configured size, and the outbox to write through.
type hijacker struct {
	http.ResponseWriter
	cfg   *Config
	clock *versions.Clock
	out   *Outbox // set by Hijack
}

// controlBuffer holds the largest control frame (a 125-byte payload and
// its header), so each reaches the outbox in one piece.
const controlBuffer = 256

// Hijack implements http.Hijacker, keeping any bytes net/http had already
// read past the request.
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	out, err := newOutbox(conn, h.cfg, h.clock)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	h.out = out
	size := h.cfg.ReadBuffer
	n := brw.Reader.Buffered()
	if n == 0 {
		return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, size), bufio.NewWriterSize(out, controlBuffer)), nil
	}
	// The client's first frame may have arrived with the request. The
	// WebSocket library keeps only what is in the returned reader's buffer
	// (it re-reads the connection after it), so put those bytes there.
	early, _ := brw.Reader.Peek(n)
	rd := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(size, n))
	if _, err := rd.Peek(n); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, bufio.NewReadWriter(rd, bufio.NewWriterSize(out, controlBuffer)), nil
}

// Unwrap lets http.ResponseController reach the original writer.
func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
