package ua_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/ua"
)

func TestChatAcrossTwoUAs(t *testing.T) {
	s := newStack(t)
	ua1, _ := s.startUA(nil)
	ua2, _ := s.startUA(nil)
	s.channel("world", kaiwa.ChannelOpen)
	s.channel("guild.7", kaiwa.ChannelClosed)
	if _, err := s.store.AddMember(context.Background(), s.tenant, "guild.7", "bob"); err != nil {
		t.Fatal(err)
	}
	alice := s.dial(ua1, "alice")
	bob := s.dial(ua2, "bob")
	if got := bob.Ready().Channels; len(got) != 1 || got[0] != "guild.7" {
		t.Errorf("bob's ready channels = %v, want his membership [guild.7]", got)
	}
	if alice.Ready().User != "alice" || alice.Ready().Version != "v1" || alice.Ready().ServerTime == 0 {
		t.Errorf("ready = %+v", alice.Ready())
	}
	ctx := ctx5(t)
	if err := alice.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	if err := bob.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	if p := testenv.NextEvent(t, alice, "presence").Presence; p.User != "bob" || p.Event != "join" || p.Ch != "world" || p.Name != "Bob" {
		t.Errorf("presence = %+v", p)
	}
	id, err := alice.Say(ctx, "world", "hello", json.RawMessage(`{"emote": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Conn{bob, alice} {
		m := testenv.NextEvent(t, c, "msg").Msg
		if m.ID != id || m.Text != "hello" || m.From != "alice" || m.Name != "Alice" || m.Ch != "world" || string(m.Data) != `{"emote": 3}` || m.TS == 0 {
			t.Errorf("delivered %+v", m)
		}
	}
	// Alice may not join the closed guild channel.
	testenv.WantCode(t, alice.Join(ctx, "guild.7"), kaiwa.CodeForbidden)
	// Direct message: both users' sessions get it.
	dmID, ch, err := alice.DM(ctx, "bob", "psst", nil)
	if err != nil || ch != "dm:alice:bob" {
		t.Fatalf("dm = %q %q %v", dmID, ch, err)
	}
	for _, c := range []*client.Conn{bob, alice} {
		if m := testenv.NextEvent(t, c, "msg").Msg; m.ID != dmID || m.Ch != "dm:alice:bob" || m.Text != "psst" {
			t.Errorf("dm delivered %+v", m)
		}
	}
	// A system message from the API tier reaches channel members.
	sys, err := s.api.Publish(ctx, kaiwa.Message{Tenant: s.tenant, Channel: "world", Text: "maintenance at 5", System: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := testenv.NextEvent(t, bob, "msg").Msg; m.ID != sys.ID || !m.System || m.From != "" {
		t.Errorf("system message delivered %+v", m)
	}
	// History reads back from the stream, oldest first.
	hist, err := bob.History(ctx, "world", 10, "")
	if err != nil || len(hist) != 2 || hist[0].ID != id || hist[1].ID != sys.ID {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	if err := bob.Leave(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	if p := testenv.NextEvent(t, alice, "presence").Presence; p.User != "bob" || p.Event != "leave" {
		t.Errorf("presence = %+v", p)
	}
	testenv.WantCode(t, bob.Leave(ctx, "world"), kaiwa.CodeNotJoined)
	if _, err := bob.Say(ctx, "world", "x", nil); !kaiwa.IsCode(err, kaiwa.CodeNotJoined) {
		t.Errorf("say after leave: %v", err)
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	s := newStack(t)
	url, _ := s.startUA(nil)
	ctx := ctx5(t)
	if _, err := s.store.CreateTenant(ctx, "rival", "Rival"); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []kaiwa.TenantID{"acme", "rival"} {
		if _, err := s.store.PutChannel(ctx, kaiwa.Channel{Tenant: tn, Name: "world", Kind: kaiwa.ChannelOpen}); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := s.store.IssueToken(ctx, "rival", kaiwa.TokenRequest{User: "alice", TTL: time.Hour, Join: []string{"*"}, Publish: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	mine := s.dial(url, "alice")
	theirs := dialToken(t, url, tok.Token)
	for _, c := range []*client.Conn{mine, theirs} {
		if err := c.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mine.Say(ctx, "world", "acme only", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mine.DM(ctx, "bob", "acme dm", nil); err != nil {
		t.Fatal(err)
	}
	testenv.NextEvent(t, mine, "msg")
	none(t, theirs, "msg")
	if h, err := theirs.History(ctx, "world", 50, ""); err != nil || len(h) != 0 {
		t.Errorf("rival history = %v, %v", h, err)
	}
}

func TestBadInputGetsStableCodes(t *testing.T) {
	s := newStack(t)
	url, _ := s.startUA(nil)
	s.channel("world", kaiwa.ChannelOpen)
	s.channel("staff", kaiwa.ChannelOpen)
	ctx := ctx5(t)
	c := dialToken(t, url, s.token("mallory", []string{"world"}, []string{"world"}))
	if err := c.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	raw := func(frame string) client.Event {
		t.Helper()
		if err := c.SendRaw(ctx, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		return testenv.NextEvent(t, c, "error")
	}
	for _, tc := range []struct {
		name, frame string
		code        kaiwa.Code
	}{
		{"malformed json", `{"op":"say",`, kaiwa.CodeBadRequest},
		{"not an object", `[1,2]`, kaiwa.CodeBadRequest},
		{"invalid utf-8", "{\"op\":\"say\",\"ch\":\"world\",\"text\":\"\xff\xfe\"}", kaiwa.CodeBadRequest},
		{"unknown op", `{"op":"teleport","ref":"r1"}`, kaiwa.CodeUnknownOp},
		{"wrong field type", `{"op":"join","ch":5}`, kaiwa.CodeBadRequest},
		{"oversize frame", `{"op":"say","ch":"world","text":"` + strings.Repeat("a", 20000) + `"}`, kaiwa.CodeTooLarge},
	} {
		if ev := raw(tc.frame); ev.Err == nil || ev.Err.Code != tc.code {
			t.Errorf("%s: got %+v", tc.name, ev)
		}
	}
	for _, tc := range []struct {
		name string
		op   map[string]any
		code kaiwa.Code
	}{
		{"bad channel name", map[string]any{"op": "join", "ch": "world war"}, kaiwa.CodeBadRequest},
		{"sql-ish channel", map[string]any{"op": "join", "ch": "x'; DROP TABLE channels; --"}, kaiwa.CodeBadRequest},
		{"no permission", map[string]any{"op": "join", "ch": "staff"}, kaiwa.CodeForbidden},
		{"missing channel", map[string]any{"op": "join", "ch": "world2"}, kaiwa.CodeNotFound},
		{"text too long", map[string]any{"op": "say", "ch": "world", "text": strings.Repeat("あ", 1001)}, kaiwa.CodeTooLarge},
		{"data not an object", map[string]any{"op": "say", "ch": "world", "data": []int{1}}, kaiwa.CodeBadRequest},
		{"empty message", map[string]any{"op": "say", "ch": "world"}, kaiwa.CodeBadRequest},
		{"dm to self", map[string]any{"op": "dm", "to": "mallory", "text": "hi"}, kaiwa.CodeBadRequest},
		{"dm without permission", map[string]any{"op": "dm", "to": "bob", "text": "hi"}, kaiwa.CodeForbidden},
		{"history limit", map[string]any{"op": "history", "ch": "world", "limit": 1000}, kaiwa.CodeBadRequest},
		{"history of someone else's dm", map[string]any{"op": "history", "ch": "dm:alice:bob"}, kaiwa.CodeNotJoined},
		{"second auth", map[string]any{"op": "auth", "token": "x"}, kaiwa.CodeBadRequest},
	} {
		if _, err := c.Request(ctx, tc.op); kaiwa.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	// The session survived all of it.
	if _, err := c.Say(ctx, "world", "still here", nil); err != nil {
		t.Fatalf("session broken by bad input: %v", err)
	}
	// A frame over the read limit closes with 1009; others are unaffected.
	other := s.dial(url, "bob")
	_ = c.SendRaw(ctx, []byte(`{"op":"say","text":"`+strings.Repeat("a", 70000)+`"}`))
	<-c.Done()
	if code, _, ok := c.CloseStatus(); !ok || code != int(websocket.StatusMessageTooBig) {
		t.Errorf("close after huge frame = %d %v (%v)", code, ok, c.Err())
	}
	if err := other.Join(ctx, "world"); err != nil {
		t.Fatalf("another session after the close: %v", err)
	}
}

func TestMissingChannelIsNotFound(t *testing.T) {
	s := newStack(t)
	url, _ := s.startUA(nil)
	c := s.dial(url, "alice")
	testenv.WantCode(t, c.Join(ctx5(t), "nowhere"), kaiwa.CodeNotFound)
}

func TestAuthentication(t *testing.T) {
	s := newStack(t)
	url, _ := s.startUA(func(c *ua.Config) { c.AuthTimeout = 300 * time.Millisecond })
	ctx := ctx5(t)
	// First-frame auth works.
	c, err := client.Dial(ctx, url, client.Options{Token: s.token("alice", nil, nil), FirstFrameAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// A bad header token is refused at the upgrade with 401.
	if _, err := client.Dial(ctx, url, client.Options{Token: kaiwa.NewCredential("acme")}); !kaiwa.IsCode(err, kaiwa.CodeUnauthorized) {
		t.Errorf("bad header token: %v", err)
	}
	// Another tenant's credential shape with a garbage secret.
	if _, err := client.Dial(ctx, url, client.Options{Token: "acme:short"}); !kaiwa.IsCode(err, kaiwa.CodeUnauthorized) {
		t.Errorf("malformed token: %v", err)
	}
	// A bad first-frame token gets error unauthorized, then close 4001.
	_, err = client.Dial(ctx, url, client.Options{Token: kaiwa.NewCredential("acme"), FirstFrameAuth: true})
	if !kaiwa.IsCode(err, kaiwa.CodeUnauthorized) {
		t.Errorf("bad first-frame token: %v", err)
	}
	// An expired token.
	tok, err := s.store.IssueToken(ctx, s.tenant, kaiwa.TokenRequest{User: "old", TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := client.Dial(ctx, url, client.Options{Token: tok.Token}); !kaiwa.IsCode(err, kaiwa.CodeTokenExpired) {
		t.Errorf("expired header token: %v", err)
	}
	if _, err := client.Dial(ctx, url, client.Options{Token: tok.Token, FirstFrameAuth: true}); !kaiwa.IsCode(err, kaiwa.CodeTokenExpired) {
		t.Errorf("expired first-frame token: %v", err)
	}
	// No auth at all: closed with 4001 after the timeout.
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = conn.Read(ctx) // the error op
	if err != nil {
		t.Fatalf("expected an error op before the close: %v", err)
	}
	_, _, err = conn.Read(ctx)
	if websocket.CloseStatus(err) != ua.StatusUnauthorized {
		t.Errorf("no auth: %v", err)
	}
}

func TestSlowConsumerIsClosedOthersKeepReceiving(t *testing.T) {
	s := newStack(t)
	url, _ := s.startUA(func(c *ua.Config) { c.SendQueueBytes = 64 << 10; c.WriteTimeout = time.Minute })
	s.channel("world", kaiwa.ChannelOpen)
	ctx := ctx5(t)
	// The slow client joins and then stops reading.
	tok := s.token("slow", []string{"*"}, nil)
	slow, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: map[string][]string{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	slow.SetReadLimit(1 << 20)
	if err := wsjson(ctx, slow, `{"op":"join","ch":"world","ref":"j"}`); err != nil {
		t.Fatal(err)
	}
	fast := s.dial(url, "fast")
	if err := fast.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	// Flood the channel with large system messages until the kernel buffers
	// and the slow client's queue are full and the server says so.
	text := strings.Repeat("x", 1000)
	data := json.RawMessage(`{"pad":"` + strings.Repeat("y", 4000) + `"}`)
	sent := 0
	for !slowClosed(t, url) {
		if sent == 20000 {
			t.Fatal("20000 messages did not fill the slow client's queue")
		}
		for range 50 {
			if _, err := s.api.Publish(context.Background(), kaiwa.Message{Tenant: s.tenant, Channel: "world", Text: fmt.Sprint(sent, text), Data: data, System: true}); err != nil {
				t.Fatal(err)
			}
			sent++
			time.Sleep(200 * time.Microsecond) // a busy channel, not one burst
		}
	}
	// The fast client kept receiving: it gets every message.
	deadline := time.After(20 * time.Second)
	for got := 0; got < sent; {
		select {
		case ev, ok := <-fast.Events():
			if !ok {
				code, reason, _ := fast.CloseStatus()
				t.Fatalf("fast client closed after %d of %d (err %v, close %d %q)", got, sent, fast.Err(), code, reason)
			}
			if ev.Op == "msg" {
				got++
			}
		case <-deadline:
			t.Fatalf("fast client got %d of %d", got, sent)
		}
	}
	// Now the slow client reads: it finds what fit in the buffers, then
	// the close with 4008.
	rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, _, err := slow.Read(rctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != ua.StatusSlowConsumer {
				t.Fatalf("slow client ended with %v (code %d), want 4008", err, code)
			}
			return
		}
	}
}

// slowClosed reads the UA's metrics: has it closed a slow consumer?
func slowClosed(t *testing.T, wsURL string) bool {
	t.Helper()
	u := "http" + strings.TrimSuffix(strings.TrimPrefix(wsURL, "ws"), "/v1/ws") + "/metrics"
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "kaiwa_ua_slow_consumers_total "); ok {
			return v != "0"
		}
	}
	return false
}

func wsjson(ctx context.Context, c *websocket.Conn, frame string) error {
	return c.Write(ctx, websocket.MessageText, []byte(frame))
}

func TestRateLimitAndAbuseClose(t *testing.T) {
	s := newStack(t)
	url, _ := s.startUA(nil)
	c := s.dial(url, "spammer")
	ctx := ctx5(t)
	limited := 0
	for i := 0; i < 40; i++ {
		if err := c.Ping(ctx); kaiwa.IsCode(err, kaiwa.CodeRateLimited) {
			limited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if limited == 0 {
		t.Fatal("40 pings at once were never rate limited")
	}
	for i := 0; i < 200; i++ {
		if err := c.SendRaw(ctx, []byte(`{"op":"ping"}`)); err != nil {
			break
		}
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("sustained abuse did not close the session")
	}
	if code, _, _ := c.CloseStatus(); code != int(ua.StatusRateLimited) {
		t.Errorf("close code %d, want 4029 (%v)", code, c.Err())
	}
}

func TestLiveChangesFromTheAPI(t *testing.T) {
	s := newStack(t)
	url, _ := s.startUA(nil)
	s.channel("guild.9", kaiwa.ChannelClosed)
	ctx := ctx5(t)
	bob := s.dial(url, "bob")
	if _, err := s.store.AddMember(ctx, s.tenant, "guild.9", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.api.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlMemberAdded, Tenant: s.tenant, User: "bob", Channel: "guild.9"}); err != nil {
		t.Fatal(err)
	}
	if ev := testenv.NextEvent(t, bob, "joined"); ev.Ch != "guild.9" {
		t.Errorf("joined = %+v", ev)
	}
	if _, err := bob.Say(ctx, "guild.9", "in", nil); err != nil {
		t.Fatalf("say after live join: %v", err)
	}
	if err := s.api.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlMemberRemoved, Tenant: s.tenant, User: "bob", Channel: "guild.9"}); err != nil {
		t.Fatal(err)
	}
	if ev := testenv.NextEvent(t, bob, "left"); ev.Ch != "guild.9" || ev.Reason != "removed" {
		t.Errorf("left = %+v", ev)
	}
	s.channel("world", kaiwa.ChannelOpen)
	if err := bob.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	if err := s.api.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlChannelDeleted, Tenant: s.tenant, Channel: "world"}); err != nil {
		t.Fatal(err)
	}
	if ev := testenv.NextEvent(t, bob, "left"); ev.Ch != "world" || ev.Reason != "channel deleted" {
		t.Errorf("left = %+v", ev)
	}
	if err := s.api.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlTokensRevoked, Tenant: s.tenant, User: "bob"}); err != nil {
		t.Fatal(err)
	}
	if ev := testenv.NextEvent(t, bob, "closing"); ev.Closing.Code != 4001 {
		t.Errorf("closing = %+v", ev.Closing)
	}
	<-bob.Done()
	if code, _, _ := bob.CloseStatus(); code != 4001 {
		t.Errorf("close code %d", code)
	}
}

func TestShutdownClosesSessionsWithGoingAway(t *testing.T) {
	s := newStack(t)
	url, srv := s.startUA(nil)
	c := s.dial(url, "alice")
	ctx := ctx5(t)
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	ev := testenv.NextEvent(t, c, "closing")
	if ev.Closing.Code != 1001 || ev.Closing.ReconnectAfterMS <= 0 {
		t.Errorf("closing = %+v", ev.Closing)
	}
	<-c.Done()
	if code, _, _ := c.CloseStatus(); code != 1001 {
		t.Errorf("close code %d", code)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if _, err := client.Dial(ctx, url, client.Options{Token: s.token("late", nil, nil)}); !kaiwa.IsCode(err, kaiwa.CodeUnavailable) {
		t.Errorf("dial while draining: %v", err)
	}
}

// TestInvalidFramesCountTowardTheRateLimit: floods of malformed, binary
// and oversize frames are refused like a flood of ops: each frame takes
// from the connection's rate, the refused ones count toward the abuse
// limit, and the session is closed with 4029 having answered at most the
// burst plus the abuse limit of them.
func TestInvalidFramesCountTowardTheRateLimit(t *testing.T) {
	s := newStack(t)
	const abuse = 30
	url, _ := s.startUA(func(c *ua.Config) { c.AbuseLimit = abuse })
	burst := kaiwa.DefaultSettings().RateBurst
	floods := map[string]func(ctx context.Context, c *websocket.Conn) error{
		"malformed": func(ctx context.Context, c *websocket.Conn) error { return wsjson(ctx, c, `{"op":`) },
		"binary": func(ctx context.Context, c *websocket.Conn) error {
			return c.Write(ctx, websocket.MessageBinary, []byte(`{"op":"ping"}`))
		},
		"oversize": func(ctx context.Context, c *websocket.Conn) error {
			return wsjson(ctx, c, `{"op":"ping","text":"`+strings.Repeat("x", 17<<10)+`"}`)
		},
	}
	for name, send := range floods {
		t.Run(name, func(t *testing.T) {
			ctx := ctx5(t)
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{
				"Authorization": {"Bearer " + s.token("flooder-"+name, []string{"*"}, []string{"*"})},
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			go func() {
				for range 1000 {
					if send(ctx, c) != nil {
						return
					}
				}
			}()
			replies := 0
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					if code := websocket.CloseStatus(err); code != ua.StatusRateLimited {
						t.Fatalf("closed with %v (%v) after %d replies, want 4029", code, err, replies)
					}
					break
				}
				if strings.Contains(string(data), `"op":"error"`) {
					replies++
				}
			}
			if replies > burst+abuse+1 {
				t.Errorf("%d error replies before the close, want at most %d", replies, burst+abuse+1)
			}
		})
	}
}

// TestMembershipGrantsPublishingAndClosingRemovesNonMembers: belonging to
// a channel lets a user speak there whatever the token's publish prefixes;
// a channel switched to closed takes its non-members out at once.
func TestMembershipGrantsPublishingAndClosingRemovesNonMembers(t *testing.T) {
	s := newStack(t)
	url, _ := s.startUA(nil)
	ctx := ctx5(t)
	s.channel("guild.1", kaiwa.ChannelClosed)
	s.channel("plaza", kaiwa.ChannelOpen)
	if _, err := s.store.AddMember(ctx, s.tenant, "guild.1", "bob"); err != nil {
		t.Fatal(err)
	}
	bob := dialToken(t, url, s.token("bob", []string{"plaza"}, nil))
	carol := dialToken(t, url, s.token("carol", []string{"plaza"}, []string{"plaza"}))
	if _, err := bob.Say(ctx, "guild.1", "members speak", nil); err != nil {
		t.Fatalf("a member without publish prefixes: %v", err)
	}
	for _, c := range []*client.Conn{bob, carol} {
		if err := c.Join(ctx, "plaza"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := bob.Say(ctx, "plaza", "not a member here", nil)
	testenv.WantCode(t, err, kaiwa.CodeForbidden)

	// bob becomes a member of plaza, which then closes: carol, who is not
	// one, leaves it at once; bob stays and may speak.
	if _, err := s.store.AddMember(ctx, s.tenant, "plaza", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.api.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlMemberAdded, Tenant: s.tenant, User: "bob", Channel: "plaza"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "bob may speak in plaza", 2*time.Second, func() bool {
		_, err := bob.Say(ctx, "plaza", "now a member", nil)
		return err == nil
	})
	s.channel("plaza", kaiwa.ChannelClosed)
	if err := s.api.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlChannelClosed, Tenant: s.tenant, Channel: "plaza"}); err != nil {
		t.Fatal(err)
	}
	if ev := testenv.NextEvent(t, carol, "left"); ev.Ch != "plaza" || ev.Reason != "channel closed" {
		t.Errorf("left = %+v", ev)
	}
	_, err = carol.Say(ctx, "plaza", "still here?", nil)
	testenv.WantCode(t, err, kaiwa.CodeNotJoined)
	if _, err := bob.Say(ctx, "plaza", "members stay", nil); err != nil {
		t.Errorf("bob after the close: %v", err)
	}
}
