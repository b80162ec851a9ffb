package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kaiwa-chat/kaiwa"
)

// fakeServer is a small in-memory Kaiwa server for the client's tests,
// speaking v1 at /v1/ws and v2 at /v2/ws: header and first-frame auth,
// join/leave/say/dm/history/ping with the protocol's main error codes,
// fanout of msg and presence, and for v2 envelopes with clocks, seq and
// prev, cid de-duplication and resume. It parses and stamps v2 frames with
// its own code, not the versions package, so that the client's use of that
// package is checked against an independent reading of the contract. A
// test adds behaviour with hook and pushes ops through the sessions it
// receives on connected.
type fakeServer struct {
	URL     string // ws://HOST/v1/ws
	URL2    string // ws://HOST/v2/ws
	HTTPURL string
	srv     *httptest.Server

	// connected receives every session once it is ready.
	connected chan *fakeSession

	mu sync.Mutex
	// hook, when set (with setHook), sees every op first and reports
	// whether it handled it.
	hook     func(s *fakeSession, op fakeOp, raw []byte) bool
	tokens   map[string]fakeUser
	channels map[string]string // name → "open" or "closed"
	members  map[string]map[string]bool
	joined   map[string]map[*fakeSession]bool
	byUser   map[string]map[*fakeSession]bool
	history  map[string][]fakeMsg
	lastSeq  map[string]uint64 // per channel
	cids     map[string]fakeOK // user + " " + cid → the first ok
	seq      uint64
	ids      int
	upgrades []http.Header
	queries  []string
	wg       sync.WaitGroup
}

type fakeUser struct{ id, name string }

// fakeMsg is a stored message in both versions' encodings.
type fakeMsg struct {
	seq, prev uint64
	v1, v2    []byte
}

// fakeOK is the ok a say or dm got, replayed for a resend of its cid.
type fakeOK struct {
	id, ch string
	seq    uint64
}

type fakeOp struct {
	Op     string            `json:"op"`
	Ref    string            `json:"ref"`
	Token  string            `json:"token"`
	Ch     string            `json:"ch"`
	To     string            `json:"to"`
	Text   string            `json:"text"`
	Data   json.RawMessage   `json:"data"`
	Limit  int               `json:"limit"`
	Before string            `json:"before"`
	CID    string            `json:"cid"`
	Resume map[string]uint64 `json:"resume"`
	N      int               `json:"n"`
}

type fakeSession struct {
	srv  *fakeServer
	ws   *websocket.Conn
	user fakeUser
	v2   bool
	// end receives the error that ended the session's read loop: the
	// client's close frame shows there.
	end chan error

	// v2 clocks, guarded by mu.
	mu     sync.Mutex
	opened time.Time
	peerT  int64     // the client's last t
	peerAt time.Time // when it arrived
	have   bool
	// frames lists the clocks of every client frame: its t, its e (-1 when
	// absent) and the server's own clock when it arrived.
	frames []fakeClocks
	// lag delays every frame after it is stamped, as a slow network would.
	lag time.Duration
}

type fakeClocks struct{ t, e, own int64 }

// fakeEnvelope is a v2 frame as the fake reads it.
type fakeEnvelope struct {
	T   *int64            `json:"t"`
	E   *int64            `json:"e"`
	Ops []json.RawMessage `json:"ops"`
}

// newFakeServer starts a fake server with users alice, bob and carol
// (tokens "t:alice", ...), open channels "lobby" and "guild.1", a closed
// channel "staff" of which alice is a member.
func newFakeServer(tb testing.TB, tlsServer bool) *fakeServer {
	tb.Helper()
	fs := &fakeServer{
		connected: make(chan *fakeSession, 64),
		tokens: map[string]fakeUser{
			"t:alice": {"alice", "Alice"},
			"t:bob":   {"bob", "Bob"},
			"t:carol": {"carol", "Carol"},
		},
		channels: map[string]string{"lobby": "open", "guild.1": "open", "staff": "closed"},
		members:  map[string]map[string]bool{"staff": {"alice": true}},
		joined:   map[string]map[*fakeSession]bool{},
		byUser:   map[string]map[*fakeSession]bool{},
		history:  map[string][]fakeMsg{},
		lastSeq:  map[string]uint64{},
		cids:     map[string]fakeOK{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/ws", fs.serveWS)
	mux.HandleFunc("/v2/ws", fs.serveWS)
	mux.HandleFunc("/v9/ws", fs.serveWS)
	mux.HandleFunc("/busy/v1/ws", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too many", http.StatusTooManyRequests)
	})
	fs.srv = httptest.NewUnstartedServer(mux)
	fs.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected
	if tlsServer {
		fs.srv.StartTLS()
	} else {
		fs.srv.Start()
	}
	fs.HTTPURL = fs.srv.URL
	fs.URL = "ws" + strings.TrimPrefix(fs.srv.URL, "http") + "/v1/ws"
	fs.URL2 = "ws" + strings.TrimPrefix(fs.srv.URL, "http") + "/v2/ws"
	tb.Cleanup(func() {
		fs.mu.Lock()
		for _, set := range fs.byUser {
			for s := range set {
				_ = s.ws.CloseNow()
			}
		}
		fs.mu.Unlock()
		fs.srv.Close()
		fs.wg.Wait()
	})
	return fs
}

func (fs *fakeServer) serveWS(w http.ResponseWriter, r *http.Request) {
	fs.wg.Add(1)
	defer fs.wg.Done()
	fs.mu.Lock()
	fs.upgrades = append(fs.upgrades, r.Header.Clone())
	fs.queries = append(fs.queries, r.URL.RawQuery)
	fs.mu.Unlock()

	var user fakeUser
	headerAuth := false
	if h := r.Header.Get("Authorization"); h != "" {
		tok, _ := strings.CutPrefix(h, "Bearer ")
		if tok == "t:expired" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"token_expired","message":"token expired"}}`))
			return
		}
		u, ok := fs.user(tok)
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"unknown token"}}`))
			return
		}
		user, headerAuth = u, true
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx := r.Context()
	s := &fakeSession{srv: fs, ws: ws, end: make(chan error, 1), v2: r.URL.Path == "/v2/ws", opened: time.Now()}
	version := "v1"
	if s.v2 {
		version = "v2"
	}
	var resume map[string]uint64
	if !headerAuth {
		// A read whose ctx expires closes the connection without a close
		// frame, so the timeout closes the session itself.
		timer := time.AfterFunc(time.Second, func() { _ = ws.Close(4001, "authentication timeout") })
		_, frame, err := ws.Read(ctx)
		if !timer.Stop() || err != nil {
			return
		}
		ops, _ := s.ops(frame)
		var op fakeOp
		if len(ops) == 1 {
			_ = json.Unmarshal(ops[0], &op)
		}
		u, ok := fs.user(op.Token)
		if op.Op != "auth" || !ok {
			s.send(map[string]any{"op": "error", "code": "unauthorized", "message": "authenticate first"})
			_ = ws.Close(4001, "unauthorized")
			return
		}
		user, resume = u, op.Resume
	}
	s.user = user

	fs.mu.Lock()
	var chans []string
	for ch, m := range fs.members {
		if m[user.id] {
			chans = append(chans, ch)
			fs.joinLocked(s, ch)
		}
	}
	if fs.byUser[user.id] == nil {
		fs.byUser[user.id] = map[*fakeSession]bool{}
	}
	fs.byUser[user.id][s] = true
	fs.mu.Unlock()
	if chans == nil {
		chans = []string{}
	}
	// ready, then for a resume the missed messages and "resumed" per
	// channel, all in one frame as a batching server may send them.
	ready, _ := json.Marshal(map[string]any{"op": "ready", "user": user.id, "name": user.name, "channels": chans,
		"version": version, "server_time": kaiwa.Now()})
	s.sendBatch(append([][]byte{ready}, fs.replay(resume)...)...)
	fs.connected <- s

	defer fs.drop(s)
	for {
		_, frame, err := ws.Read(ctx)
		if err != nil {
			s.end <- err
			return
		}
		ops, err := s.ops(frame)
		if err != nil {
			s.send(map[string]any{"op": "error", "code": "bad_request", "message": err.Error()})
			continue
		}
		for _, raw := range ops {
			var op fakeOp
			if err := json.Unmarshal(raw, &op); err != nil || op.Op == "" {
				s.send(map[string]any{"op": "error", "code": "bad_request", "message": "malformed op"})
				continue
			}
			fs.mu.Lock()
			hook := fs.hook
			fs.mu.Unlock()
			if hook != nil && hook(s, op, raw) {
				continue
			}
			fs.handle(s, op)
		}
	}
}

// ops returns the ops of a client frame: the frame itself in v1, the
// envelope's ops in v2, after recording its clocks.
func (s *fakeSession) ops(frame []byte) ([]json.RawMessage, error) {
	if !s.v2 {
		return []json.RawMessage{frame}, nil
	}
	var env fakeEnvelope
	if err := json.Unmarshal(frame, &env); err != nil || env.Ops == nil {
		return nil, errors.New("v2 frames are envelopes")
	}
	if env.T == nil || *env.T < 0 || len(env.Ops) == 0 {
		return nil, errors.New("bad envelope")
	}
	now := time.Now()
	s.mu.Lock()
	c := fakeClocks{t: *env.T, e: -1, own: now.Sub(s.opened).Milliseconds()}
	if env.E != nil {
		c.e = *env.E
	}
	s.frames = append(s.frames, c)
	s.peerT, s.peerAt, s.have = *env.T, now, true
	s.mu.Unlock()
	return env.Ops, nil
}

// clientFrames returns the clocks of the client's frames so far.
func (s *fakeSession) clientFrames() []fakeClocks {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fakeClocks(nil), s.frames...)
}

// setLag makes every frame of the session spend d on the way.
func (s *fakeSession) setLag(d time.Duration) {
	s.mu.Lock()
	s.lag = d
	s.mu.Unlock()
}

// replay returns, for each channel of a resume in name order, the kept
// messages after the client's seq and a "resumed" op; recovered is false
// when the oldest of them does not follow on from the client's seq (its
// predecessors were trimmed).
func (fs *fakeServer) replay(resume map[string]uint64) [][]byte {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out [][]byte
	for _, ch := range slices.Sorted(maps.Keys(resume)) {
		last := resume[ch]
		var missed []fakeMsg
		for _, m := range fs.history[ch] {
			if m.seq > last {
				missed = append(missed, m)
			}
		}
		recovered := fs.lastSeq[ch] <= last || len(missed) > 0 && missed[0].prev <= last
		if recovered {
			for _, m := range missed {
				out = append(out, m.v2)
			}
		}
		b, _ := json.Marshal(map[string]any{"op": "resumed", "ch": ch, "recovered": recovered})
		out = append(out, b)
	}
	return out
}

// trimHistory keeps only the newest keep messages of ch, as a stream
// whose retention ran out would.
func (fs *fakeServer) trimHistory(ch string, keep int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if h := fs.history[ch]; len(h) > keep {
		fs.history[ch] = slices.Clone(h[len(h)-keep:])
	}
}

func (fs *fakeServer) setHook(h func(s *fakeSession, op fakeOp, raw []byte) bool) {
	fs.mu.Lock()
	fs.hook = h
	fs.mu.Unlock()
}

func (fs *fakeServer) user(token string) (fakeUser, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	u, ok := fs.tokens[token]
	return u, ok
}

func (fs *fakeServer) joinLocked(s *fakeSession, ch string) {
	if fs.joined[ch] == nil {
		fs.joined[ch] = map[*fakeSession]bool{}
	}
	fs.joined[ch][s] = true
}

func (fs *fakeServer) drop(s *fakeSession) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.byUser[s.user.id], s)
	for _, set := range fs.joined {
		delete(set, s)
	}
}

func (fs *fakeServer) handle(s *fakeSession, op fakeOp) {
	fail := func(code kaiwa.Code, msg string) {
		s.send(map[string]any{"op": "error", "ref": op.Ref, "code": code, "message": msg})
	}
	switch op.Op {
	case "join":
		fs.mu.Lock()
		kind, ok := fs.channels[op.Ch]
		switch {
		case !ok:
			fs.mu.Unlock()
			fail(kaiwa.CodeNotFound, "no such channel")
			return
		case kind == "closed" && !fs.members[op.Ch][s.user.id]:
			fs.mu.Unlock()
			fail(kaiwa.CodeForbidden, "members only")
			return
		}
		others := fs.sessionsLocked(op.Ch)
		fs.joinLocked(s, op.Ch)
		fs.mu.Unlock()
		s.send(map[string]any{"op": "ok", "ref": op.Ref, "ch": op.Ch})
		for _, o := range others {
			o.send(map[string]any{"op": "presence", "ch": op.Ch, "user": s.user.id, "name": s.user.name, "event": "join"})
		}
	case "leave":
		fs.mu.Lock()
		if !fs.joined[op.Ch][s] {
			fs.mu.Unlock()
			fail(kaiwa.CodeNotJoined, "not joined")
			return
		}
		delete(fs.joined[op.Ch], s)
		fs.mu.Unlock()
		s.send(map[string]any{"op": "ok", "ref": op.Ref})
	case "say":
		if len([]rune(op.Text)) > 1000 {
			fail(kaiwa.CodeTooLarge, "text too long")
			return
		}
		fs.mu.Lock()
		if !fs.joined[op.Ch][s] {
			fs.mu.Unlock()
			fail(kaiwa.CodeNotJoined, "not joined")
			return
		}
		fs.mu.Unlock()
		ok := fs.publish(s, op.Ch, op, fs.sessionsLocked)
		s.send(map[string]any{"op": "ok", "ref": op.Ref, "id": ok.id, "seq": ok.seq})
	case "dm":
		if op.To == s.user.id || !kaiwa.ValidID(op.To) {
			fail(kaiwa.CodeBadRequest, "bad recipient")
			return
		}
		ch := kaiwa.DMChannel(s.user.id, op.To)
		ok := fs.publish(s, ch, op, func(string) []*fakeSession {
			var out []*fakeSession
			for _, u := range []string{s.user.id, op.To} {
				for o := range fs.byUser[u] {
					out = append(out, o)
				}
			}
			return out
		})
		s.send(map[string]any{"op": "ok", "ref": op.Ref, "id": ok.id, "ch": ch, "seq": ok.seq})
	case "history":
		fs.mu.Lock()
		if !fs.joined[op.Ch][s] && !strings.Contains(op.Ch+":", ":"+s.user.id+":") {
			fs.mu.Unlock()
			fail(kaiwa.CodeNotJoined, "not joined")
			return
		}
		msgs := []json.RawMessage{}
		for _, m := range fs.history[op.Ch] {
			if s.v2 {
				msgs = append(msgs, m.v2)
			} else {
				msgs = append(msgs, m.v1)
			}
		}
		fs.mu.Unlock()
		if op.Limit > 100 {
			fail(kaiwa.CodeBadRequest, "limit over 100")
			return
		}
		if op.Limit > 0 && len(msgs) > op.Limit {
			msgs = msgs[len(msgs)-op.Limit:]
		}
		s.send(map[string]any{"op": "history", "ref": op.Ref, "ch": op.Ch, "messages": msgs})
	case "ping":
		s.send(map[string]any{"op": "pong", "ref": op.Ref})
	default:
		fail(kaiwa.CodeUnknownOp, "unknown op")
	}
}

// sessionsLocked returns the sessions joined to ch; fs.mu is held.
func (fs *fakeServer) sessionsLocked(ch string) []*fakeSession {
	var out []*fakeSession
	for o := range fs.joined[ch] {
		out = append(out, o)
	}
	return out
}

// publish stores a message and sends it to the recipients (chosen with
// fs.mu held), sender's sessions included, each in its version's form. A
// cid the user already sent returns the first ok and delivers nothing.
func (fs *fakeServer) publish(s *fakeSession, ch string, op fakeOp, recipients func(string) []*fakeSession) fakeOK {
	fs.mu.Lock()
	key := s.user.id + " " + op.CID
	if first, dup := fs.cids[key]; dup && op.CID != "" {
		fs.mu.Unlock()
		return first
	}
	fs.ids++
	fs.seq++
	ok := fakeOK{id: "m" + strconv.Itoa(fs.ids), ch: ch, seq: fs.seq}
	if op.CID != "" {
		fs.cids[key] = ok
	}
	m := map[string]any{"op": "msg", "ch": ch, "id": ok.id, "from": s.user.id,
		"name": s.user.name, "text": op.Text, "ts": kaiwa.Now()}
	v1 := encodeWithData(m, op.Data)
	prev := fs.lastSeq[ch]
	m["seq"], m["prev"] = ok.seq, prev
	v2 := encodeWithData(m, op.Data)
	fs.lastSeq[ch] = ok.seq
	fs.history[ch] = append(fs.history[ch], fakeMsg{seq: ok.seq, prev: prev, v1: v1, v2: v2})
	to := recipients(ch)
	fs.mu.Unlock()
	for _, o := range to {
		if o.v2 {
			o.sendRaw(v2)
		} else {
			o.sendRaw(v1)
		}
	}
	return ok
}

// encodeWithData encodes m with data relayed byte for byte, as Kaiwa does.
func encodeWithData(m map[string]any, data json.RawMessage) []byte {
	b, _ := json.Marshal(m)
	if len(data) > 0 {
		b = append(append(append(b[:len(b)-1], `,"data":`...), data...), '}')
	}
	return b
}

func (s *fakeSession) send(v any) {
	b, _ := json.Marshal(v)
	s.sendRaw(b)
}

// sendRaw sends one encoded op: as the frame in v1, in an envelope in v2.
func (s *fakeSession) sendRaw(b []byte) { s.sendBatch(b) }

// sendBatch sends ops in one v2 envelope (one frame each in v1).
func (s *fakeSession) sendBatch(ops ...[]byte) {
	if !s.v2 {
		for _, op := range ops {
			s.writeFrame(op)
		}
		return
	}
	now := time.Now()
	s.mu.Lock()
	frame := fmt.Appendf(nil, `{"t":%d`, now.Sub(s.opened).Milliseconds())
	if s.have {
		frame = fmt.Appendf(frame, `,"e":%d`, s.peerT+now.Sub(s.peerAt).Milliseconds())
	}
	lag := s.lag
	s.mu.Unlock()
	frame = append(frame, `,"ops":[`...)
	frame = append(frame, bytes.Join(ops, []byte(","))...)
	if lag > 0 {
		time.Sleep(lag) // the frame is on the wire
	}
	s.writeFrame(append(frame, ']', '}'))
}

// writeFrame writes one text frame as given.
func (s *fakeSession) writeFrame(b []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.ws.Write(ctx, websocket.MessageText, b)
}

// closeWith sends "closing" and closes the session with code.
func (s *fakeSession) closeWith(code int, reason string, reconnectAfterMS int) {
	s.send(map[string]any{"op": "closing", "code": code, "reason": reason, "reconnect_after_ms": reconnectAfterMS})
	_ = s.ws.Close(websocket.StatusCode(code), reason)
}

// session waits for the next session to become ready.
func (fs *fakeServer) session(tb testing.TB) *fakeSession {
	tb.Helper()
	select {
	case s := <-fs.connected:
		return s
	case <-time.After(5 * time.Second):
		tb.Fatal("no session became ready")
		return nil
	}
}

// dial connects to fs over v1 and closes the Conn at cleanup.
func dial(tb testing.TB, fs *fakeServer, opts Options) *Conn {
	tb.Helper()
	return dialURL(tb, fs.URL, opts)
}

// dialURL connects to url and closes the Conn at cleanup.
func dialURL(tb testing.TB, url string, opts Options) *Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, opts)
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// nextEvent returns the next event, failing the test after 5 s.
func nextEvent(tb testing.TB, c *Conn) Event {
	tb.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			tb.Fatalf("events closed: %v", c.Err())
		}
		return ev
	case <-time.After(5 * time.Second):
		tb.Fatal("no event within 5s")
		return Event{}
	}
}

// testCtx returns a context that ends with the test or after 10 s.
func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
