package ua_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// TestBeforeSendHook: the tenant's hook allows, rejects (the sender gets
// the reason, nobody sees the message) or replaces a message; one that
// sleeps past the budget lets it through or refuses it by the tenant's
// policy; its latency shows in the UA's metrics.
func TestBeforeSendHook(t *testing.T) {
	s := newStack(t)
	const secret = "the-hook-secret-of-the-game"
	var badSig atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Kaiwa-Signature") != kaiwa.SignWebhook(secret, r.Header.Get("Kaiwa-Timestamp"), body) {
			badSig.Add(1)
		}
		var c struct{ Ch, From, Text string }
		_ = json.Unmarshal(body, &c)
		switch {
		case strings.Contains(c.Text, "http://"):
			_, _ = io.WriteString(w, `{"action":"reject","reason":"no_links"}`)
		case c.Text == "darn":
			_, _ = io.WriteString(w, `{"action":"replace","text":"d**n","data":{"censored":true}}`)
		case c.Text == "slow":
			time.Sleep(400 * time.Millisecond)
			_, _ = io.WriteString(w, `{"action":"allow"}`)
		default:
			_, _ = io.WriteString(w, `{"action":"allow"}`)
		}
	}))
	defer hook.Close()
	uaURL, srv := s.startUA(nil)
	s.channel("guild.1", kaiwa.ChannelOpen)
	s.channel("world", kaiwa.ChannelOpen)
	settings := func(onTimeout string) {
		s.setSettings(kaiwa.Settings{BeforeSend: kaiwa.BeforeSend{
			Hooks:     []kaiwa.BeforeSendHook{{Prefix: "guild.", URL: hook.URL, Secret: secret}},
			TimeoutMS: 100, OnTimeout: onTimeout,
		}})
	}
	settings(kaiwa.HookFailOpen)
	ctx := ctx5(t)
	alice := s.dial(uaURL, "alice")
	bob := s.dial(uaURL, "bob")
	for _, ch := range []string{"guild.1", "world"} {
		if err := alice.Join(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if err := bob.Join(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	next := func() string { return testenv.NextEvent(t, bob, "msg").Msg.Text }

	if _, err := alice.Say(ctx, "guild.1", "hello", nil); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "hello" {
		t.Errorf("bob got %q", got)
	}
	_, err := alice.Say(ctx, "guild.1", "see http://spam", nil)
	testenv.WantCode(t, err, kaiwa.CodeRejected)
	if kaiwa.ErrorMessage(err) != "no_links" {
		t.Errorf("reason %q", kaiwa.ErrorMessage(err))
	}
	// Channels without a hook are not asked.
	if _, err := alice.Say(ctx, "world", "see http://ok-here", nil); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "see http://ok-here" {
		t.Errorf("bob got %q, want the rejected message never to arrive", got)
	}
	if _, err := alice.Say(ctx, "guild.1", "darn", nil); err != nil {
		t.Fatal(err)
	}
	m := testenv.NextEvent(t, bob, "msg").Msg
	if m.Text != "d**n" || string(m.Data) != `{"censored":true}` {
		t.Errorf("replaced message %q %s", m.Text, m.Data)
	}
	// Past the budget, failing open: the message goes out.
	if _, err := alice.Say(ctx, "guild.1", "slow", nil); err != nil {
		t.Fatalf("fail open: %v", err)
	}
	if got := next(); got != "slow" {
		t.Errorf("bob got %q", got)
	}
	// Failing closed: refused, and never delivered.
	settings(kaiwa.HookFailClosed)
	passed := 0 // sent before the UA had the new settings
	testenv.Eventually(t, "fail closed", 2*time.Second, func() bool {
		_, err := alice.Say(ctx, "guild.1", "slow", nil)
		if err == nil {
			passed++
		}
		return kaiwa.IsCode(err, kaiwa.CodeUnavailable)
	})
	if _, err := alice.Say(ctx, "world", "after", nil); err != nil {
		t.Fatal(err)
	}
	for range passed {
		next()
	}
	if got := next(); got != "after" {
		t.Errorf("bob got %q, want the refused message never to arrive", got)
	}
	if n := badSig.Load(); n != 0 {
		t.Errorf("%d hook calls with a bad signature", n)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`kaiwa_ua_before_send_seconds_count{outcome="reject",tenant="acme"} 1`, `outcome="timeout"`, `outcome="replace"`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
