package bare

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of [Server].
const (
	DefaultQueue     = 256
	DefaultReadLimit = 64 << 10
	// maxBatch is the most queued frames one writev sends.
	maxBatch     = 64
	writeTimeout = 10 * time.Second
)

// Close codes the server uses.
const (
	closeNormal       = 1000
	closeGoingAway    = 1001
	closeProtocol     = 1002
	closeSlowConsumer = 4008
)

// Server is the bare reference fan-out server. It is an http.Handler:
// GET /v1/ws (or /ws) upgrades to a session, /healthz answers probes.
// Its tunables are set before it serves.
type Server struct {
	// Queue is each connection's send queue, in frames (default
	// [DefaultQueue]).
	Queue int
	// ReadLimit bounds one client frame in bytes (default
	// [DefaultReadLimit]).
	ReadLimit int

	users atomic.Uint64
	ids   atomic.Uint64

	mu     sync.RWMutex
	rooms  map[string]*room
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// room is one channel's members; guarded by Server.mu.
type room struct {
	members []*conn
	index   map[*conn]int
}

// conn is one session. The reader goroutine owns rooms; the writer owns
// the connection's write side.
type conn struct {
	srv   *Server
	nc    net.Conn
	user  string
	queue chan []byte
	rooms map[string]struct{}

	closing   chan struct{}
	closeOnce sync.Once
	closeCode int
	done      chan struct{} // closed when the writer has closed nc
}

// New returns a server with the default tunables.
func New() *Server {
	return &Server{rooms: make(map[string]*room), conns: make(map[*conn]struct{})}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		_, _ = w.Write([]byte("ok\n"))
	case "/v1/ws", "/ws":
		s.upgrade(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	key, err := checkUpgrade(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	nc, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	_, err = nc.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		AcceptKey(key) + "\r\n\r\n"))
	if err != nil {
		_ = nc.Close()
		return
	}
	queue := s.Queue
	if queue <= 0 {
		queue = DefaultQueue
	}
	c := &conn{
		srv: s, nc: nc, user: "u" + strconv.FormatUint(s.users.Add(1), 10),
		queue: make(chan []byte, queue), rooms: make(map[string]struct{}),
		closing: make(chan struct{}), done: make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.writeLoop()
	c.send(readyOp{Op: "ready", User: c.user, Name: c.user, Channels: []string{}, Version: "v1", ServerTime: time.Now().UnixMilli()})
	c.readLoop(rw.Reader)
	c.close(closeNormal)
	<-c.done
	s.mu.Lock()
	for ch := range c.rooms {
		s.leaveLocked(c, ch)
	}
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Close closes every session (1001) and waits for them to end.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	all := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	s.mu.Unlock()
	for _, c := range all {
		c.close(closeGoingAway)
	}
	s.wg.Wait()
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}

func (s *Server) join(c *conn, ch string) {
	if _, ok := c.rooms[ch]; ok {
		return
	}
	c.rooms[ch] = struct{}{}
	s.mu.Lock()
	r := s.rooms[ch]
	if r == nil {
		r = &room{index: make(map[*conn]int)}
		s.rooms[ch] = r
	}
	r.index[c] = len(r.members)
	r.members = append(r.members, c)
	s.mu.Unlock()
}

func (s *Server) leave(c *conn, ch string) {
	if _, ok := c.rooms[ch]; !ok {
		return
	}
	delete(c.rooms, ch)
	s.mu.Lock()
	s.leaveLocked(c, ch)
	s.mu.Unlock()
}

func (s *Server) leaveLocked(c *conn, ch string) {
	r := s.rooms[ch]
	if r == nil {
		return
	}
	i, ok := r.index[c]
	if !ok {
		return
	}
	last := len(r.members) - 1
	r.members[i] = r.members[last]
	r.index[r.members[i]] = i
	r.members[last] = nil
	r.members = r.members[:last]
	delete(r.index, c)
	if len(r.members) == 0 {
		delete(s.rooms, ch)
	}
}

// fanout queues one encoded frame to every member of ch.
func (s *Server) fanout(ch string, frame []byte) {
	s.mu.RLock()
	if r := s.rooms[ch]; r != nil {
		for _, c := range r.members {
			c.enqueue(frame)
		}
	}
	s.mu.RUnlock()
}

// enqueue queues a frame without blocking; a full queue closes the
// session as a slow consumer.
func (c *conn) enqueue(frame []byte) {
	select {
	case c.queue <- frame:
	default:
		c.close(closeSlowConsumer)
		// The writer is stuck on a full socket: fail its write now.
		_ = c.nc.SetWriteDeadline(time.Now())
	}
}

// send encodes an op as one text frame and queues it.
func (c *conn) send(op any) {
	b, err := json.Marshal(op)
	if err != nil {
		return
	}
	c.enqueue(AppendFrame(make([]byte, 0, len(b)+4), opText, b))
}

// close asks the writer to send a close frame with code and close the
// connection. Only the first call counts.
func (c *conn) close(code int) {
	c.closeOnce.Do(func() {
		c.closeCode = code
		close(c.closing)
	})
}

// writeLoop is the session's one writer: it sends everything queued with
// one writev, up to maxBatch frames at a time.
func (c *conn) writeLoop() {
	defer close(c.done)
	defer c.nc.Close()
	batch := make([][]byte, 0, maxBatch)
	for {
		select {
		case f := <-c.queue:
			batch = append(batch[:0], f)
		fill:
			for len(batch) < maxBatch {
				select {
				case f := <-c.queue:
					batch = append(batch, f)
				default:
					break fill
				}
			}
			_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			bufs := net.Buffers(batch)
			if _, err := bufs.WriteTo(c.nc); err != nil {
				c.close(closeNormal)
				return
			}
			clear(batch)
		case <-c.closing:
			var p [2]byte
			binary.BigEndian.PutUint16(p[:], uint16(c.closeCode))
			_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.nc.Write(AppendFrame(nil, opClose, p[:]))
			return
		}
	}
}

// inOp is any client op the server understands.
type inOp struct {
	Op   string          `json:"op"`
	Ref  string          `json:"ref"`
	Ch   string          `json:"ch"`
	Text string          `json:"text"`
	Data json.RawMessage `json:"data"`
}

type readyOp struct {
	Op         string   `json:"op"`
	User       string   `json:"user"`
	Name       string   `json:"name"`
	Channels   []string `json:"channels"`
	Version    string   `json:"version"`
	ServerTime int64    `json:"server_time"`
}

type okOp struct {
	Op  string `json:"op"`
	Ref string `json:"ref,omitempty"`
	Ch  string `json:"ch,omitempty"`
	ID  string `json:"id,omitempty"`
}

type errorOp struct {
	Op      string `json:"op"`
	Ref     string `json:"ref,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type msgOp struct {
	Op   string          `json:"op"`
	Ch   string          `json:"ch"`
	ID   string          `json:"id"`
	From string          `json:"from"`
	Name string          `json:"name"`
	Text string          `json:"text"`
	Data json.RawMessage `json:"data,omitempty"`
	TS   int64           `json:"ts"`
}

// readLoop reads frames until the connection ends or breaks the protocol.
func (c *conn) readLoop(br *bufio.Reader) {
	limit := c.srv.ReadLimit
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	var buf, msg []byte
	fragmented := false
	for {
		f, b, err := readFrame(br, buf[:0], limit)
		buf = b
		if err != nil {
			if errors.Is(err, errFrame) {
				c.close(closeProtocol)
			}
			return
		}
		switch f.op {
		case opText, opBinary:
			if fragmented {
				c.close(closeProtocol)
				return
			}
			if f.fin {
				c.handle(f.payload)
				continue
			}
			fragmented, msg = true, append(msg[:0], f.payload...)
		case opContinuation:
			if !fragmented || len(msg)+len(f.payload) > limit {
				c.close(closeProtocol)
				return
			}
			msg = append(msg, f.payload...)
			if f.fin {
				fragmented = false
				c.handle(msg)
			}
		case opPing:
			c.enqueue(AppendFrame(nil, opPong, f.payload))
		case opPong:
		case opClose:
			return
		default:
			c.close(closeProtocol)
			return
		}
	}
}

// handle executes one op.
func (c *conn) handle(b []byte) {
	var in inOp
	if err := json.Unmarshal(b, &in); err != nil {
		c.send(errorOp{Op: "error", Code: "bad_request", Message: "invalid JSON"})
		return
	}
	switch in.Op {
	case "join":
		c.srv.join(c, in.Ch)
		c.send(okOp{Op: "ok", Ref: in.Ref, Ch: in.Ch})
	case "leave":
		c.srv.leave(c, in.Ch)
		c.send(okOp{Op: "ok", Ref: in.Ref, Ch: in.Ch})
	case "say":
		id := "m" + strconv.FormatUint(c.srv.ids.Add(1), 36)
		c.send(okOp{Op: "ok", Ref: in.Ref, ID: id})
		m, err := json.Marshal(msgOp{Op: "msg", Ch: in.Ch, ID: id, From: c.user, Name: c.user,
			Text: in.Text, Data: in.Data, TS: time.Now().UnixMilli()})
		if err != nil {
			return
		}
		c.srv.fanout(in.Ch, AppendFrame(make([]byte, 0, len(m)+4), opText, m))
	case "ping":
		c.send(okOp{Op: "pong", Ref: in.Ref})
	case "auth":
		// Ready was sent at once: there is nothing to authenticate.
	default:
		c.send(errorOp{Op: "error", Ref: in.Ref, Code: "unknown_op", Message: "unknown op"})
	}
}

// Serve serves on ln until ctx is done, then closes every session and
// the listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	s.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
