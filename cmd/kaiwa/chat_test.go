package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/kaiwa-chat/kaiwa/client"
)

// chatFake is a small Kaiwa v1 server over TLS for the chat command's
// tests. It knows one token, "t:alice", whose user is a member of "guild";
// every channel but "nowhere" exists. Messages said are echoed to the
// sender's session and kept for history.
type chatFake struct {
	url      string
	sessions chan *chatFakeSession
	said     chan chatOp // every say and dm received

	mu      sync.Mutex
	history map[string][]json.RawMessage
	ids     int
	wg      sync.WaitGroup
}

type chatOp struct {
	Op    string `json:"op"`
	Ref   string `json:"ref"`
	Ch    string `json:"ch"`
	To    string `json:"to"`
	Text  string `json:"text"`
	Limit int    `json:"limit"`
}

type chatFakeSession struct{ ws *websocket.Conn }

func (s *chatFakeSession) send(v any) {
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.ws.Write(ctx, websocket.MessageText, b)
}

func newChatFake(tb testing.TB) *chatFake {
	tb.Helper()
	f := &chatFake{
		sessions: make(chan *chatFakeSession, 8),
		said:     make(chan chatOp, 64),
		history:  map[string][]json.RawMessage{},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected
	srv.StartTLS()
	f.url = "wss://" + strings.TrimPrefix(srv.URL, "https://") + "/v1/ws"
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		f.wg.Wait()
	})
	return f
}

func (f *chatFake) serve(w http.ResponseWriter, r *http.Request) {
	f.wg.Add(1)
	defer f.wg.Done()
	if r.URL.Path != "/v1/ws" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer t:alice" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"unknown token"}}`))
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	s := &chatFakeSession{ws: ws}
	s.send(map[string]any{"op": "ready", "user": "alice", "name": "Alice", "channels": []string{"guild"},
		"version": "v1", "server_time": kaiwa.Now()})
	f.sessions <- s
	for {
		_, frame, err := ws.Read(r.Context())
		if err != nil {
			return
		}
		var op chatOp
		if err := json.Unmarshal(frame, &op); err != nil {
			s.send(map[string]any{"op": "error", "code": "bad_request", "message": "malformed op"})
			continue
		}
		switch op.Op {
		case "join":
			if op.Ch == "nowhere" {
				s.send(map[string]any{"op": "error", "ref": op.Ref, "code": "not_found", "message": "no such channel"})
				continue
			}
			s.send(map[string]any{"op": "ok", "ref": op.Ref, "ch": op.Ch})
		case "leave":
			s.send(map[string]any{"op": "ok", "ref": op.Ref})
		case "say", "dm":
			f.said <- op
			ch := op.Ch
			if op.Op == "dm" {
				ch = kaiwa.DMChannel("alice", op.To)
			}
			f.mu.Lock()
			f.ids++
			id := "m" + strconv.Itoa(f.ids)
			msg, _ := json.Marshal(map[string]any{"op": "msg", "ch": ch, "id": id, "from": "alice",
				"name": "Alice", "text": op.Text, "ts": kaiwa.Now()})
			f.history[ch] = append(f.history[ch], msg)
			f.mu.Unlock()
			s.send(map[string]any{"op": "ok", "ref": op.Ref, "id": id, "ch": ch})
			s.send(json.RawMessage(msg))
		case "history":
			f.mu.Lock()
			msgs := append([]json.RawMessage{}, f.history[op.Ch]...)
			f.mu.Unlock()
			if len(msgs) > op.Limit {
				msgs = msgs[len(msgs)-op.Limit:]
			}
			s.send(map[string]any{"op": "history", "ref": op.Ref, "ch": op.Ch, "messages": msgs})
		default:
			s.send(map[string]any{"op": "error", "ref": op.Ref, "code": "unknown_op", "message": "unknown op"})
		}
	}
}

func (f *chatFake) session(tb testing.TB) *chatFakeSession {
	tb.Helper()
	select {
	case s := <-f.sessions:
		return s
	case <-time.After(5 * time.Second):
		tb.Fatal("no chat session connected")
		return nil
	}
}

// syncBuffer is an io.Writer tests can read while runChat writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor polls out until it contains want.
func waitFor(tb testing.TB, out *syncBuffer, want string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			tb.Fatalf("output never contained %q; it is:\n%s", want, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// startChat runs runChat in the background and returns its output, its
// stdin and the channel its result arrives on.
func startChat(t *testing.T, ctx context.Context, args []string, env map[string]string) (*syncBuffer, *io.PipeWriter, <-chan error) {
	t.Helper()
	out := &syncBuffer{}
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	done := make(chan error, 1)
	go func() { done <- runChat(ctx, args, envMap(env), pr, out, out) }()
	return out, pw, done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("runChat did not return")
		return nil
	}
}

func TestChatInteractive(t *testing.T) {
	t.Parallel()
	f := newChatFake(t)
	out, in, done := startChat(t, context.Background(), []string{"--insecure", "--join", "lobby"},
		map[string]string{"KAIWA_WS_URL": f.url, "KAIWA_TOKEN": "t:alice"})
	s := f.session(t)
	waitFor(t, out, "* connected as Alice (alice), protocol v1")
	waitFor(t, out, "* in guild")
	waitFor(t, out, "* talking in lobby")

	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(in, line+"\n"); err != nil {
			t.Fatalf("write stdin: %v", err)
		}
	}
	send("hello there")
	waitFor(t, out, "[lobby] Alice: hello there\n")

	s.send(map[string]any{"op": "presence", "ch": "lobby", "user": "bob", "name": "Bob", "event": "join"})
	waitFor(t, out, "* Bob joined lobby\n")
	s.send(map[string]any{"op": "msg", "ch": "lobby", "id": "b1", "from": "bob", "name": "Bob", "text": "\x1b[2Jhi", "ts": 1})
	waitFor(t, out, "[lobby] Bob: \ufffd[2Jhi\n")
	s.send(map[string]any{"op": "msg", "ch": "lobby", "id": "s1", "text": "Server restarts soon", "ts": 1, "system": true})
	waitFor(t, out, "[lobby] system: Server restarts soon\n")
	s.send(map[string]any{"op": "error", "code": "rate_limited", "message": "slow down"})
	waitFor(t, out, "! rate_limited: slow down\n")

	send("/dm bob psst")
	waitFor(t, out, "[dm:alice:bob] Alice: psst\n")
	send("/history 5")
	waitFor(t, out, "* last 1 messages of lobby\n[lobby] Alice: hello there\n")
	send("/join nowhere")
	waitFor(t, out, "! not_found: no such channel\n")
	send("/ch guild")
	waitFor(t, out, "* talking in guild\n")
	send("//me waves")
	waitFor(t, out, "[guild] Alice: /me waves\n")
	send("/leave")
	waitFor(t, out, "* left guild\n")
	send("anyone?")
	waitFor(t, out, "! no current channel")
	send("/frobnicate")
	waitFor(t, out, "! unknown command /frobnicate")
	send("/help")
	waitFor(t, out, "/history [N]")
	send("/quit")
	if err := wait(t, done); err != nil {
		t.Fatalf("runChat after /quit = %v", err)
	}
	if strings.Contains(out.String(), "t:alice") {
		t.Error("the token was printed")
	}
	var said []string
	for len(f.said) > 0 {
		op := <-f.said
		said = append(said, op.Op+" "+op.Ch+op.To+" "+op.Text)
	}
	want := []string{"say lobby hello there", "dm bob psst", "say guild /me waves"}
	if strings.Join(said, "|") != strings.Join(want, "|") {
		t.Errorf("server received %q, want %q", said, want)
	}
}

func TestChatEOF(t *testing.T) {
	t.Parallel()
	f := newChatFake(t)
	out := &syncBuffer{}
	err := runChat(context.Background(), []string{"--url", f.url, "--token", "t:alice", "--insecure"},
		envMap(nil), strings.NewReader("/join lobby\nbye\n"), out, out)
	if err != nil {
		t.Fatalf("runChat at EOF = %v; output:\n%s", err, out)
	}
	if op := <-f.said; op.Ch != "lobby" || op.Text != "bye" {
		t.Errorf("server received %+v, want say bye to lobby", op)
	}
}

func TestChatContextCancel(t *testing.T) {
	t.Parallel()
	f := newChatFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	out, _, done := startChat(t, ctx, []string{"--insecure"}, map[string]string{"KAIWA_WS_URL": f.url, "KAIWA_TOKEN": "t:alice"})
	f.session(t)
	waitFor(t, out, "* talking in guild")
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("runChat after cancel = %v", err)
	}
}

func TestChatServerCloses(t *testing.T) {
	t.Parallel()
	f := newChatFake(t)
	out, _, done := startChat(t, context.Background(), []string{"--insecure"}, map[string]string{"KAIWA_WS_URL": f.url, "KAIWA_TOKEN": "t:alice"})
	s := f.session(t)
	waitFor(t, out, "* talking in guild")
	s.send(map[string]any{"op": "closing", "code": 4001, "reason": "token revoked"})
	_ = s.ws.Close(4001, "token revoked")
	err := wait(t, done)
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("runChat = %v, want the server's 4001 close", err)
	}
	waitFor(t, out, "! closing: 4001 token revoked\n")
	waitFor(t, out, "! disconnected:")
}

func TestChatRefused(t *testing.T) {
	t.Parallel()
	f := newChatFake(t)
	const secret = "t:not-a-token"
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		code kaiwa.Code // "" when any error will do
		hint string     // what the error must say, if anything
	}{
		{"bad token", []string{"--insecure"}, map[string]string{"KAIWA_WS_URL": f.url, "KAIWA_TOKEN": secret}, kaiwa.CodeUnauthorized, ""},
		{"self-signed certificate", nil, map[string]string{"KAIWA_WS_URL": f.url, "KAIWA_TOKEN": secret}, "", "--insecure"},
		{"no token", []string{"--insecure", "--url", f.url}, nil, "", ""},
		{"unknown flag", []string{"--nope"}, nil, "", ""},
		{"extra argument", []string{"--token", secret, "lobby"}, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &syncBuffer{}
			err := runChat(context.Background(), tc.args, envMap(tc.env), strings.NewReader(""), out, out)
			if err == nil {
				t.Fatal("runChat succeeded")
			}
			if tc.code != "" && !kaiwa.IsCode(err, tc.code) {
				t.Errorf("runChat = %v, want code %s", err, tc.code)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("runChat = %v, want it to mention %q", err, tc.hint)
			}
			if strings.Contains(err.Error()+out.String(), secret) {
				t.Errorf("the token was printed: %v\n%s", err, out)
			}
		})
	}
}

func TestChatFlagsOverrideEnv(t *testing.T) {
	t.Parallel()
	f := newChatFake(t)
	env := map[string]string{"KAIWA_WS_URL": "wss://127.0.0.1:1/v1/ws", "KAIWA_TOKEN": "t:wrong"}
	out := &syncBuffer{}
	err := runChat(context.Background(), []string{"--url", f.url, "--token", "t:alice", "--insecure", "--join", " lobby, ,guild.2 "},
		envMap(env), strings.NewReader("/quit\n"), out, out)
	if err != nil {
		t.Fatalf("runChat = %v; output:\n%s", err, out)
	}
	for _, want := range []string{"* joined lobby\n", "* joined guild.2\n", "* talking in guild.2 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	help := &syncBuffer{}
	if err := runChat(context.Background(), []string{"--help"}, envMap(env), strings.NewReader(""), help, help); err != nil {
		t.Fatalf("runChat --help = %v", err)
	}
	if !strings.Contains(help.String(), "usage: kaiwa chat") || strings.Contains(help.String(), "t:wrong") {
		t.Errorf("--help printed:\n%s", help)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":            "plain",
		"日本語 ok":           "日本語 ok",
		"a\nb\rc":          "a\ufffdb\ufffdc",
		"\x1b]0;pwned\x07": "\ufffd]0;pwned\ufffd",
		"c1 \u009b31m":     "c1 \ufffd31m",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}
