package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kaiwa-chat/kaiwa"
)

func TestDialHeaderAuth(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	c := dial(t, fs, Options{Token: "t:alice"})

	r := c.Ready()
	if r.User != "alice" || r.Name != "Alice" || r.Version != "v1" || r.ServerTime == 0 {
		t.Errorf("Ready() = %+v", r)
	}
	if !slices.Equal(r.Channels, []string{"staff"}) {
		t.Errorf("Ready().Channels = %q, want the member channel staff", r.Channels)
	}
	if c.Version() != "v1" {
		t.Errorf("Version() = %q", c.Version())
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if got := fs.upgrades[0].Get("Authorization"); got != "Bearer t:alice" {
		t.Errorf("Authorization header = %q", got)
	}
	if fs.queries[0] != "" {
		t.Errorf("upgrade URL has query %q; tokens never travel in URLs", fs.queries[0])
	}
}

func TestDialFirstFrameAuth(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	c := dial(t, fs, Options{Token: "t:bob", FirstFrameAuth: true})
	if r := c.Ready(); r.User != "bob" || len(r.Channels) != 0 {
		t.Errorf("Ready() = %+v", r)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if got := fs.upgrades[0].Get("Authorization"); got != "" {
		t.Errorf("first-frame auth sent an Authorization header %q", got)
	}
}

func TestDialRefused(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	for _, tc := range []struct {
		name string
		url  string
		opts Options
		code kaiwa.Code
	}{
		{"header unknown token", fs.URL, Options{Token: "t:nobody"}, kaiwa.CodeUnauthorized},
		{"header expired token", fs.URL, Options{Token: "t:expired"}, kaiwa.CodeTokenExpired},
		{"first frame unknown token", fs.URL, Options{Token: "t:nobody", FirstFrameAuth: true}, kaiwa.CodeUnauthorized},
		{"HTTP 429 without body", strings.Replace(fs.URL, "/v1/ws", "/busy/v1/ws", 1), Options{Token: "t:alice"}, kaiwa.CodeRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Dial(testCtx(t), tc.url, tc.opts)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			var ke *kaiwa.Error
			if !errors.As(err, &ke) || ke.Code != tc.code {
				t.Fatalf("Dial error = %v, want a *kaiwa.Error with code %s", err, tc.code)
			}
		})
	}
}

func TestDialNoCredentials(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	// No token, no auth frame: the server closes with 4001 after its
	// authentication timeout (1 s in the fake, 10 s in Kaiwa).
	_, err := Dial(testCtx(t), fs.URL, Options{})
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("Dial error = %v, want CloseError 4001", err)
	}
}

func TestDialBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"wss://example.com/ws",
		"wss://example.com/v1/api",
		"wss://example.com/v1/ws?token=secret",
		"wss://user:secret@example.com/v1/ws",
		"ftp://example.com/v1/ws",
		"://",
	} {
		if _, err := Dial(context.Background(), u, Options{Token: "t:alice"}); err == nil {
			t.Errorf("Dial(%q) succeeded", u)
		}
	}
	if _, err := Dial(context.Background(), "wss://example.com/v9/ws", Options{}); !errors.Is(err, ErrVersion) {
		t.Errorf("Dial of v9 = %v, want ErrVersion", err)
	}
}

func TestDialTLS(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, true)
	u := strings.Replace(fs.URL, "ws://", "wss://", 1)
	if c, err := Dial(testCtx(t), u, Options{Token: "t:alice"}); err == nil {
		c.Close()
		t.Fatal("Dial trusted a self-signed certificate")
	}
	c, err := Dial(testCtx(t), u, Options{Token: "t:alice", TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatalf("Dial with InsecureSkipVerify: %v", err)
	}
	defer c.Close()
	if err := c.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping over TLS: %v", err)
	}
}

func TestChat(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFakeServer(t, false)
	alice := dial(t, fs, Options{Token: "t:alice"})
	bob := dial(t, fs, Options{Token: "t:bob"})

	if err := alice.Join(ctx, "lobby"); err != nil {
		t.Fatalf("alice Join: %v", err)
	}
	if err := bob.Join(ctx, "lobby"); err != nil {
		t.Fatalf("bob Join: %v", err)
	}
	ev := nextEvent(t, alice)
	if ev.Op != "presence" || *ev.Presence != (Presence{Ch: "lobby", User: "bob", Name: "Bob", Event: "join"}) {
		t.Fatalf("alice got %+v, want bob's presence", ev)
	}

	data := json.RawMessage(`{"emote": "wave",  "n": [1, 2]}`)
	id, err := bob.Say(ctx, "lobby", "hello", data)
	if err != nil || id == "" {
		t.Fatalf("Say = %q, %v", id, err)
	}
	for _, c := range []*Conn{alice, bob} {
		ev := nextEvent(t, c)
		if ev.Op != "msg" || ev.Msg.ID != id || ev.Msg.Ch != "lobby" || ev.Msg.From != "bob" ||
			ev.Msg.Name != "Bob" || ev.Msg.Text != "hello" || ev.Msg.TS == 0 {
			t.Fatalf("got %+v (%s), want bob's msg %s", ev, ev.Raw, id)
		}
		if string(ev.Msg.Data) != string(data) {
			t.Errorf("data = %s, want %s byte for byte", ev.Msg.Data, data)
		}
	}

	id2, dmCh, err := alice.DM(ctx, "bob", "psst", nil)
	if err != nil || dmCh != "dm:alice:bob" {
		t.Fatalf("DM = %q, %q, %v", id2, dmCh, err)
	}
	for _, c := range []*Conn{alice, bob} {
		if ev := nextEvent(t, c); ev.Op != "msg" || ev.Msg.Ch != "dm:alice:bob" || ev.Msg.Text != "psst" {
			t.Fatalf("got %+v, want the direct message", ev)
		}
	}

	msgs, err := bob.History(ctx, "lobby", 10, "")
	if err != nil || len(msgs) != 1 || msgs[0].ID != id || msgs[0].Text != "hello" {
		t.Fatalf("History = %+v, %v", msgs, err)
	}
	if msgs, err := alice.History(ctx, "dm:alice:bob", 0, ""); err != nil || len(msgs) != 1 || msgs[0].ID != id2 {
		t.Fatalf("History of the direct channel = %+v, %v", msgs, err)
	}
	if err := alice.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := bob.Leave(ctx, "lobby"); err != nil {
		t.Fatalf("Leave: %v", err)
	}
}

func TestErrorReplies(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFakeServer(t, false)
	c := dial(t, fs, Options{Token: "t:bob"})
	for _, tc := range []struct {
		name string
		do   func() error
		code kaiwa.Code
	}{
		{"join missing", func() error { return c.Join(ctx, "nowhere") }, kaiwa.CodeNotFound},
		{"join closed", func() error { return c.Join(ctx, "staff") }, kaiwa.CodeForbidden},
		{"leave not joined", func() error { return c.Leave(ctx, "lobby") }, kaiwa.CodeNotJoined},
		{"say not joined", func() error { _, err := c.Say(ctx, "lobby", "hi", nil); return err }, kaiwa.CodeNotJoined},
		{"dm self", func() error { _, _, err := c.DM(ctx, "bob", "hi", nil); return err }, kaiwa.CodeBadRequest},
		{"history limit", func() error { _, err := c.History(ctx, "dm:alice:bob", 101, ""); return err }, kaiwa.CodeBadRequest},
		{"data not JSON", func() error { _, err := c.Say(ctx, "lobby", "", json.RawMessage(`{`)); return err }, kaiwa.CodeBadRequest},
	} {
		err := tc.do()
		var ke *kaiwa.Error
		if !errors.As(err, &ke) || ke.Code != tc.code {
			t.Errorf("%s: error %v, want code %s", tc.name, err, tc.code)
		}
	}
	// The session is still usable after errors.
	if err := c.Join(ctx, "lobby"); err != nil {
		t.Fatalf("Join after errors: %v", err)
	}
}

func TestRequestAndSendRaw(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFakeServer(t, false)
	c := dial(t, fs, Options{Token: "t:alice"})

	r, err := c.Request(ctx, map[string]any{"op": "frobnicate", "ref": "mine"})
	if !kaiwa.IsCode(err, kaiwa.CodeUnknownOp) || r.Op != "error" || !strings.HasPrefix(r.Ref, "c") {
		t.Fatalf("Request(frobnicate) = %+v, %v; want an unknown_op error with the Conn's ref", r, err)
	}
	r, err = c.Request(ctx, map[string]any{"op": "join", "ch": "guild.1"})
	if err != nil || r.Op != "ok" || r.Ch != "guild.1" {
		t.Fatalf("Request(join) = %+v, %v", r, err)
	}

	if err := c.SendRaw(ctx, []byte("not json")); err != nil {
		t.Fatalf("SendRaw: %v", err)
	}
	ev := nextEvent(t, c)
	if ev.Op != "error" || ev.Err == nil || ev.Err.Code != kaiwa.CodeBadRequest || ev.Ref != "" {
		t.Fatalf("after a bad frame got %+v, want error bad_request without ref", ev)
	}
	if err := c.SendRaw(ctx, []byte(`{"op":"ping","ref":"raw-1"}`)); err != nil {
		t.Fatalf("SendRaw: %v", err)
	}
	if ev := nextEvent(t, c); ev.Op != "pong" || ev.Ref != "raw-1" {
		t.Fatalf("after a raw ping got %+v, want pong raw-1", ev)
	}
}

// TestReplyMatching has the server answer a batch of concurrent requests
// in reverse order: each caller must get the reply to its own ref.
func TestReplyMatching(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFakeServer(t, false)
	const n = 16
	var held []fakeOp
	fs.setHook(func(s *fakeSession, op fakeOp, _ []byte) bool {
		if op.Op != "echo" {
			return false
		}
		held = append(held, op) // only this session's goroutine runs the hook
		if len(held) == n {
			for i := len(held) - 1; i >= 0; i-- {
				s.send(map[string]any{"op": "ok", "ref": held[i].Ref, "id": fmt.Sprint(held[i].N)})
			}
		}
		return true
	})
	c := dial(t, fs, Options{Token: "t:alice"})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			r, err := c.Request(ctx, map[string]any{"op": "echo", "n": i})
			if err != nil {
				errs <- err
			} else if r.ID != fmt.Sprint(i) {
				errs <- fmt.Errorf("request %d got the reply for %s", i, r.ID)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	c := dial(t, fs, Options{Token: "t:alice"})
	s := fs.session(t)
	s.send(map[string]any{"op": "joined", "ch": "guild.1"})
	s.send(map[string]any{"op": "msg", "ch": "guild.1", "id": "m9", "text": "Raid at nine", "ts": 1700000000000, "system": true})
	s.send(map[string]any{"op": "deleted", "ch": "guild.1", "id": "m9"})
	s.send(map[string]any{"op": "presence", "ch": "guild.1", "user": "bob", "name": "Bob", "event": "leave"})
	s.send(map[string]any{"op": "left", "ch": "guild.1", "reason": "channel deleted"})
	s.send(map[string]any{"op": "error", "code": "rate_limited", "message": "slow down"})
	s.send(map[string]any{"op": "typing", "ch": "lobby", "user": "bob"})
	s.send(map[string]any{"op": "ok", "ref": "stale", "id": "m1"})

	check := func(ok bool, ev Event) {
		t.Helper()
		if !ok {
			t.Errorf("unexpected event %+v (%s)", ev, ev.Raw)
		}
	}
	ev := nextEvent(t, c)
	check(ev.Op == "joined" && ev.Ch == "guild.1", ev)
	ev = nextEvent(t, c)
	check(ev.Op == "msg" && ev.Msg.System && ev.Msg.From == "" && ev.Msg.Text == "Raid at nine" && ev.Msg.TS == 1700000000000, ev)
	ev = nextEvent(t, c)
	check(ev.Op == "deleted" && ev.Ch == "guild.1" && ev.ID == "m9", ev)
	ev = nextEvent(t, c)
	check(ev.Op == "presence" && ev.Presence.Event == "leave" && ev.Presence.User == "bob", ev)
	ev = nextEvent(t, c)
	check(ev.Op == "left" && ev.Ch == "guild.1" && ev.Reason == "channel deleted", ev)
	ev = nextEvent(t, c)
	check(ev.Op == "error" && ev.Err.Code == kaiwa.CodeRateLimited && ev.Err.Message == "slow down", ev)
	ev = nextEvent(t, c)
	check(ev.Op == "typing" && string(ev.Raw) == `{"ch":"lobby","op":"typing","user":"bob"}`, ev)
	ev = nextEvent(t, c)
	check(ev.Op == "ok" && ev.Ref == "stale", ev)
}

func TestServerClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code      int
		reason    string
		reconnect int
	}{
		{4008, "slow consumer", 0},
		{4001, "token revoked", 0},
		{4003, "banned", 0},
		{4029, "rate limited", 0},
		{1001, "server shutting down", 1500},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			t.Parallel()
			fs := newFakeServer(t, false)
			hold := make(chan struct{})
			fs.setHook(func(s *fakeSession, op fakeOp, _ []byte) bool {
				if op.Op == "hold" {
					close(hold)
					return true // never answered
				}
				return false
			})
			c := dial(t, fs, Options{Token: "t:alice"})
			s := fs.session(t)
			reqErr := make(chan error, 1)
			go func() {
				_, err := c.Request(context.Background(), map[string]any{"op": "hold"})
				reqErr <- err
			}()
			<-hold
			s.closeWith(tc.code, tc.reason, tc.reconnect)

			ev := nextEvent(t, c)
			if ev.Op != "closing" || *ev.Closing != (Closing{Code: tc.code, Reason: tc.reason, ReconnectAfterMS: tc.reconnect}) {
				t.Fatalf("got %+v, want the closing notice", ev)
			}
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Conn not done after the server closed")
			}
			if _, ok := <-c.Events(); ok {
				t.Error("Events not closed after the Conn ended")
			}
			code, reason, ok := c.CloseStatus()
			if !ok || code != tc.code || reason != tc.reason {
				t.Errorf("CloseStatus() = %d, %q, %v", code, reason, ok)
			}
			var ce *CloseError
			if err := <-reqErr; !errors.As(err, &ce) || ce.Code != tc.code {
				t.Errorf("pending request ended with %v, want CloseError %d", err, tc.code)
			}
			if err := c.Ping(context.Background()); !errors.As(err, &ce) {
				t.Errorf("Ping after close = %v, want the CloseError", err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close after the server closed: %v", err)
			}
		})
	}
}

func TestServerCloseTooBig(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	fs.setHook(func(s *fakeSession, op fakeOp, raw []byte) bool {
		if len(raw) > 1024 {
			_ = s.ws.Close(websocket.StatusMessageTooBig, "frame too large")
			return true
		}
		return false
	})
	c := dial(t, fs, Options{Token: "t:alice"})
	if err := c.SendRaw(testCtx(t), []byte(`{"op":"say","text":"`+strings.Repeat("x", 2048)+`"}`)); err != nil {
		t.Fatalf("SendRaw: %v", err)
	}
	<-c.Done()
	if code, _, ok := c.CloseStatus(); !ok || code != 1009 {
		t.Errorf("CloseStatus() = %d, %v, want 1009", code, ok)
	}
}

func TestSlowReader(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	fs.setHook(func(s *fakeSession, op fakeOp, _ []byte) bool {
		if op.Op != "flood" {
			return false
		}
		for i := range 100 {
			s.send(map[string]any{"op": "msg", "ch": "lobby", "id": fmt.Sprint(i), "text": "spam", "ts": 1})
		}
		return true
	})
	const buf = 4
	c := dial(t, fs, Options{Token: "t:alice", EventBuffer: buf})
	s := fs.session(t)
	if err := c.SendRaw(testCtx(t), []byte(`{"op":"flood"}`)); err != nil {
		t.Fatalf("SendRaw: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a Conn nobody reads did not close itself")
	}
	if !errors.Is(c.Err(), ErrSlowReader) {
		t.Errorf("Err() = %v, want ErrSlowReader", c.Err())
	}
	if _, _, ok := c.CloseStatus(); ok {
		t.Error("CloseStatus reports a server close for a client-side slow reader")
	}
	n := 0
	for range c.Events() {
		n++
	}
	if n != buf {
		t.Errorf("%d buffered events readable after close, want %d", n, buf)
	}
	select {
	case err := <-s.end:
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Errorf("server saw %v, want close 1008", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("server saw no close")
	}
}

func TestClientClose(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	c := dial(t, fs, Options{Token: "t:alice"})
	s := fs.session(t)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", c.Err())
	}
	if _, _, ok := c.CloseStatus(); ok {
		t.Error("CloseStatus reports a server close after Close")
	}
	if err := c.Join(context.Background(), "lobby"); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close = %v, want ErrClosed", err)
	}
	if err := <-s.end; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("server saw %v, want close 1000", err)
	}
}

func TestRequestContext(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	release := make(chan struct{})
	fs.setHook(func(s *fakeSession, op fakeOp, _ []byte) bool {
		if op.Op != "slow" {
			return false
		}
		go func() {
			<-release
			s.send(map[string]any{"op": "ok", "ref": op.Ref})
		}()
		return true
	})
	c := dial(t, fs, Options{Token: "t:alice"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Request(ctx, map[string]any{"op": "slow"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Request = %v, want DeadlineExceeded", err)
	}
	close(release)
	if ev := nextEvent(t, c); ev.Op != "ok" || ev.Ref == "" {
		t.Errorf("late reply arrived as %+v, want an ok event with its ref", ev)
	}
	if err := c.Ping(testCtx(t)); err != nil {
		t.Errorf("Ping after a timed-out request: %v", err)
	}
}

func TestReadLimit(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	c := dial(t, fs, Options{Token: "t:alice", ReadLimit: 512})
	s := fs.session(t)
	s.send(map[string]any{"op": "msg", "ch": "lobby", "id": "big", "text": strings.Repeat("y", 1024), "ts": 1})
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a frame over ReadLimit did not end the Conn")
	}
	if c.Err() == nil {
		t.Error("Err() is nil after the read limit ended the Conn")
	}
	if err := <-s.end; websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("server saw %v, want close 1009", err)
	}
}

func TestEncodeOp(t *testing.T) {
	t.Parallel()
	b, err := encodeOp(outOp{Op: "say", Ref: "c1", Ch: "lobby", Text: "a \"quoted\" <text>"}, json.RawMessage(` {"k": [1, 2]} `))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"op":"say","ref":"c1","ch":"lobby","text":"a \"quoted\" \u003ctext\u003e","data": {"k": [1, 2]} }`
	if string(b) != want {
		t.Errorf("encodeOp = %s\nwant        %s", b, want)
	}
	if !json.Valid(b) {
		t.Error("encodeOp made invalid JSON")
	}
}

func TestMaxFrame(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	fs := newFakeServer(t, false)
	var mu sync.Mutex
	var seen []string
	fs.setHook(func(s *fakeSession, op fakeOp, raw []byte) bool {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s/%d", op.Op, len(raw)))
		mu.Unlock()
		return false
	})
	c := dial(t, fs, Options{Token: "t:alice"})
	if _, err := c.Say(ctx, "staff", strings.Repeat("x", DefaultMaxFrame), nil); !kaiwa.IsCode(err, kaiwa.CodeTooLarge) {
		t.Fatalf("Say of a frame over 16 KiB = %v, want too_large", err)
	}
	if _, err := c.Say(ctx, "staff", strings.Repeat("é", 1000), nil); err != nil {
		t.Fatalf("Say of 1000 characters: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "say/") {
		t.Errorf("server received %q, want only the second say", seen)
	}
}
