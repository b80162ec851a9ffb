package client

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kaiwa-chat/kaiwa"
)

// fakeServer is a small in-memory Kaiwa v1 server for the client's tests:
// header and first-frame auth, join/leave/say/dm/history/ping with the
// protocol's main error codes, fanout of msg and presence. A test adds
// behaviour with hook and pushes ops through the sessions it receives on
// connected.
type fakeServer struct {
	URL     string // ws://HOST/v1/ws
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
	history  map[string][]json.RawMessage
	ids      int
	upgrades []http.Header
	queries  []string
	wg       sync.WaitGroup
}

type fakeUser struct{ id, name string }

type fakeOp struct {
	Op     string          `json:"op"`
	Ref    string          `json:"ref"`
	Token  string          `json:"token"`
	Ch     string          `json:"ch"`
	To     string          `json:"to"`
	Text   string          `json:"text"`
	Data   json.RawMessage `json:"data"`
	Limit  int             `json:"limit"`
	Before string          `json:"before"`
	N      int             `json:"n"`
}

type fakeSession struct {
	srv  *fakeServer
	ws   *websocket.Conn
	user fakeUser
	// end receives the error that ended the session's read loop: the
	// client's close frame shows there.
	end chan error
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
		history:  map[string][]json.RawMessage{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/ws", fs.serveWS)
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
	s := &fakeSession{srv: fs, ws: ws, end: make(chan error, 1)}
	if !headerAuth {
		// A read whose ctx expires closes the connection without a close
		// frame, so the timeout closes the session itself.
		timer := time.AfterFunc(time.Second, func() { _ = ws.Close(4001, "authentication timeout") })
		_, frame, err := ws.Read(ctx)
		if !timer.Stop() || err != nil {
			return
		}
		var op fakeOp
		_ = json.Unmarshal(frame, &op)
		u, ok := fs.user(op.Token)
		if op.Op != "auth" || !ok {
			s.send(map[string]any{"op": "error", "code": "unauthorized", "message": "authenticate first"})
			_ = ws.Close(4001, "unauthorized")
			return
		}
		user = u
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
	s.send(map[string]any{"op": "ready", "user": user.id, "name": user.name, "channels": chans,
		"version": "v1", "server_time": kaiwa.Now()})
	fs.connected <- s

	defer fs.drop(s)
	for {
		_, frame, err := ws.Read(ctx)
		if err != nil {
			s.end <- err
			return
		}
		var op fakeOp
		if err := json.Unmarshal(frame, &op); err != nil || op.Op == "" {
			s.send(map[string]any{"op": "error", "code": "bad_request", "message": "malformed op"})
			continue
		}
		fs.mu.Lock()
		hook := fs.hook
		fs.mu.Unlock()
		if hook != nil && hook(s, op, frame) {
			continue
		}
		fs.handle(s, op)
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
		id := fs.publish(s, op.Ch, op, fs.sessionsLocked)
		s.send(map[string]any{"op": "ok", "ref": op.Ref, "id": id})
	case "dm":
		if op.To == s.user.id || !kaiwa.ValidID(op.To) {
			fail(kaiwa.CodeBadRequest, "bad recipient")
			return
		}
		ch := kaiwa.DMChannel(s.user.id, op.To)
		id := fs.publish(s, ch, op, func(string) []*fakeSession {
			var out []*fakeSession
			for _, u := range []string{s.user.id, op.To} {
				for o := range fs.byUser[u] {
					out = append(out, o)
				}
			}
			return out
		})
		s.send(map[string]any{"op": "ok", "ref": op.Ref, "id": id, "ch": ch})
	case "history":
		fs.mu.Lock()
		if !fs.joined[op.Ch][s] && !strings.Contains(op.Ch+":", ":"+s.user.id+":") {
			fs.mu.Unlock()
			fail(kaiwa.CodeNotJoined, "not joined")
			return
		}
		msgs := append([]json.RawMessage{}, fs.history[op.Ch]...)
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
// fs.mu held), sender's sessions included.
func (fs *fakeServer) publish(s *fakeSession, ch string, op fakeOp, recipients func(string) []*fakeSession) string {
	fs.mu.Lock()
	fs.ids++
	id := "m" + strconv.Itoa(fs.ids)
	b, _ := json.Marshal(map[string]any{"op": "msg", "ch": ch, "id": id, "from": s.user.id,
		"name": s.user.name, "text": op.Text, "ts": kaiwa.Now()})
	if len(op.Data) > 0 { // relayed byte for byte, as Kaiwa does
		b = append(append(append(b[:len(b)-1], `,"data":`...), op.Data...), '}')
	}
	fs.history[ch] = append(fs.history[ch], b)
	to := recipients(ch)
	fs.mu.Unlock()
	for _, o := range to {
		o.sendRaw(b)
	}
	return id
}

func (s *fakeSession) send(v any) {
	b, _ := json.Marshal(v)
	s.sendRaw(b)
}

func (s *fakeSession) sendRaw(b []byte) {
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

// dial connects user's token to fs and closes the Conn at cleanup.
func dial(tb testing.TB, fs *fakeServer, opts Options) *Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, fs.URL, opts)
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
