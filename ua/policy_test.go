package ua_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// setNG replaces the tenant's NG list and tells the UAs, as the API does.
func (s *stack) setNG(l kaiwa.NGList) {
	s.t.Helper()
	ctx := context.Background()
	if _, err := s.store.PutNGList(ctx, s.tenant, l); err != nil {
		s.t.Fatal(err)
	}
	if err := s.api.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlNGWords, Tenant: s.tenant}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) setSettings(st kaiwa.Settings) {
	s.t.Helper()
	ctx := context.Background()
	if err := s.store.SetTenantSettings(ctx, s.tenant, st); err != nil {
		s.t.Fatal(err)
	}
	if err := s.api.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlSettings, Tenant: s.tenant}); err != nil {
		s.t.Fatal(err)
	}
}

// wantErr turns a say's result into eventually's: done when it was refused
// with ng_word.
func wantErr(_ string, err error) error {
	if kaiwa.IsCode(err, kaiwa.CodeNGWord) {
		return nil
	}
	return fmt.Errorf("say = %v, want ng_word", err)
}

// eventually retries f until it returns nil or a second has passed: live
// changes must apply within 1 s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(liveBudget * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not in effect within 1 s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNGWordsRejectMaskAndEscalate(t *testing.T) {
	s := newStack(t)
	url1, _ := s.startUA(nil)
	url2, _ := s.startUA(nil)
	s.channel("world", kaiwa.ChannelOpen)
	ctx := ctx5(t)
	alice, bob := s.dial(url1, "alice"), s.dial(url2, "bob")
	for _, c := range []*client.Conn{alice, bob} {
		if err := c.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.Say(ctx, "world", "you idiot", nil); err != nil {
		t.Fatalf("before any NG list: %v", err)
	}
	testenv.NextEvent(t, bob, "msg")
	s.setNG(kaiwa.NGList{Policy: kaiwa.NGReject, Words: []string{"idiot", "バカ"}})
	for _, c := range []*client.Conn{alice, bob} {
		eventually(t, "the NG list", func() error { return wantErr(c.Say(ctx, "world", "you ｉ ｄ ｉ ｏ ｔ", nil)) })
	}
	if _, err := alice.Say(ctx, "world", "ばか", nil); !kaiwa.IsCode(err, kaiwa.CodeNGWord) {
		t.Errorf("hiragana form of a katakana word: %v", err)
	}
	// Mask: everyone sees the masked text, untouched characters exact.
	s.setNG(kaiwa.NGList{Policy: kaiwa.NGMask, Words: []string{"idiot"}})
	var id string
	eventually(t, "the mask policy", func() error {
		var err error
		id, err = alice.Say(ctx, "world", "hey IDIOT, hi", nil)
		return err
	})
	for {
		m := testenv.NextEvent(t, bob, "msg").Msg
		if m.ID == id {
			if m.Text != "hey *****, hi" {
				t.Errorf("masked text = %q", m.Text)
			}
			break
		}
	}
	// Escalation: two hits within the window mute the user on every UA.
	s.setSettings(kaiwa.Settings{NGEscalateHits: 2, NGEscalateWindowS: 60, NGEscalateMuteS: 60})
	time.Sleep(100 * time.Millisecond)
	for range 2 {
		if _, err := bob.Say(ctx, "world", "idiot", nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the escalation mute", func() error {
		_, err := bob.Say(ctx, "world", "hello", nil)
		if kaiwa.IsCode(err, kaiwa.CodeMuted) {
			return nil
		}
		return fmt.Errorf("say = %v, want muted", err)
	})
	// The mute is stored by the directory a moment after this session
	// muted itself.
	eventually(t, "the escalation mute stored", func() error {
		list, err := s.store.Sanctions(ctx, s.tenant, "bob")
		if err != nil || len(list) == 0 {
			return fmt.Errorf("sanctions %v, %v", list, err)
		}
		return nil
	})
	bob2 := s.dial(url1, "bob") // a new session of bob is muted too
	if err := bob2.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob2.Say(ctx, "world", "hello", nil); !kaiwa.IsCode(err, kaiwa.CodeMuted) {
		t.Errorf("bob's new session: %v", err)
	}
}

func TestModerationLive(t *testing.T) {
	s := newStack(t)
	url1, _ := s.startUA(nil)
	url2, _ := s.startUA(nil)
	s.channel("world", kaiwa.ChannelOpen)
	ctx := ctx5(t)
	mod := kaiwa.Moderator{Store: s.store, Bus: s.api, Events: s.api}
	mallory1, mallory2 := s.dial(url1, "mallory"), s.dial(url2, "mallory")
	for _, c := range []*client.Conn{mallory1, mallory2} {
		if err := c.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	// Mute, then unmute, on both UAs.
	muteEnd := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := mod.Sanction(ctx, kaiwa.Sanction{Tenant: s.tenant, User: "mallory", Kind: kaiwa.SanctionMute, Until: muteEnd, Reason: "flooding"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Conn{mallory1, mallory2} {
		eventually(t, "mute", func() error {
			if _, err := c.Say(ctx, "world", "x", nil); !kaiwa.IsCode(err, kaiwa.CodeMuted) {
				return kaiwa.Errorf(kaiwa.CodeInternal, "say = %v", err)
			}
			return nil
		})
		// The error says until when and why.
		_, err := c.Say(ctx, "world", "x", nil)
		if want := "muted until " + muteEnd.UTC().Format(time.RFC3339) + ": flooding"; kaiwa.ErrorMessage(err) != want {
			t.Errorf("muted say: %q, want %q", kaiwa.ErrorMessage(err), want)
		}
	}
	if err := mod.Lift(ctx, s.tenant, "mallory", kaiwa.SanctionMute); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Conn{mallory1, mallory2} {
		eventually(t, "unmute", func() error { _, err := c.Say(ctx, "world", "back", nil); return err })
	}
	// Deleting a message reaches the channel's sessions.
	id, err := mallory1.Say(ctx, "world", "regrettable", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.api.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlMessageDeleted, Tenant: s.tenant, Channel: "world", ID: id}); err != nil {
		t.Fatal(err)
	}
	if ev := testenv.NextEvent(t, mallory2, "deleted"); ev.ID != id || ev.Ch != "world" {
		t.Errorf("deleted = %+v", ev)
	}
	// Kick closes every session with 4003 and the reason.
	if err := mod.Kick(ctx, s.tenant, "mallory", "spamming"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Conn{mallory1, mallory2} {
		ev := testenv.NextEvent(t, c, "closing")
		if ev.Closing.Code != 4003 || !strings.Contains(ev.Closing.Reason, "spamming") {
			t.Errorf("closing = %+v", ev.Closing)
		}
		<-c.Done()
		if code, _, _ := c.CloseStatus(); code != 4003 {
			t.Errorf("kick close code %d", code)
		}
	}
	// A kicked user may come back; a banned one may not.
	back := s.dial(url1, "mallory")
	banEnd := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := mod.Sanction(ctx, kaiwa.Sanction{Tenant: s.tenant, User: "mallory", Kind: kaiwa.SanctionBan, Until: banEnd, Reason: "abuse"}); err != nil {
		t.Fatal(err)
	}
	banText := "banned until " + banEnd.UTC().Format(time.RFC3339) + ": abuse"
	if ev := testenv.NextEvent(t, back, "closing"); ev.Closing.Reason != banText {
		t.Errorf("ban closing reason %q, want %q", ev.Closing.Reason, banText)
	}
	<-back.Done()
	if code, _, _ := back.CloseStatus(); code != 4003 {
		t.Errorf("ban close code %d", code)
	}
	for _, o := range []client.Options{{Token: s.token("mallory", nil, nil)}, {Token: s.token("mallory", nil, nil), FirstFrameAuth: true}} {
		_, err = client.Dial(ctx, url2, o)
		if !kaiwa.IsCode(err, kaiwa.CodeBanned) || kaiwa.ErrorMessage(err) != banText {
			t.Errorf("banned user's new connection (first frame %v): %v, want %q", o.FirstFrameAuth, err, banText)
		}
	}
	if err := mod.Lift(ctx, s.tenant, "mallory", kaiwa.SanctionBan); err != nil {
		t.Fatal(err)
	}
	s.dial(url2, "mallory")
}

func TestInboxReachesEverySessionOfTheUser(t *testing.T) {
	s := newStack(t)
	url1, _ := s.startUA(nil)
	url2, _ := s.startUA(nil)
	phone, pc := s.dial(url1, "bob"), s.dial(url2, "bob")
	other := s.dial(url1, "carol")
	ctx := ctx5(t)
	m, err := s.api.Publish(ctx, kaiwa.Message{Tenant: s.tenant, Channel: kaiwa.Inbox("bob"), Text: "You won the raffle", System: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Conn{phone, pc} {
		got := testenv.NextEvent(t, c, "msg").Msg
		if got.ID != m.ID || got.Ch != "@bob" || !got.System || got.Text != "You won the raffle" {
			t.Errorf("inbox message = %+v", got)
		}
	}
	none(t, other, "msg")
	// The inbox is readable by its owner only.
	if h, err := phone.History(ctx, "@bob", 10, ""); err != nil || len(h) != 1 {
		t.Errorf("own inbox history = %v, %v", h, err)
	}
	if _, err := other.History(ctx, "@bob", 10, ""); !kaiwa.IsCode(err, kaiwa.CodeNotJoined) {
		t.Errorf("someone else's inbox: %v", err)
	}
	if err := phone.Join(ctx, "@bob"); !kaiwa.IsCode(err, kaiwa.CodeBadRequest) {
		t.Errorf("join an inbox: %v", err)
	}
}

func TestTenantSettingsApplyLive(t *testing.T) {
	s := newStack(t)
	url, _ := s.startUA(nil)
	s.channel("world", kaiwa.ChannelOpen)
	ctx := ctx5(t)
	c := s.dial(url, "alice")
	if err := c.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Say(ctx, "world", strings.Repeat("a", 20), nil); err != nil {
		t.Fatal(err)
	}
	s.setSettings(kaiwa.Settings{MaxTextLen: 10})
	eventually(t, "the new text limit", func() error {
		_, err := c.Say(ctx, "world", strings.Repeat("a", 20), nil)
		if kaiwa.IsCode(err, kaiwa.CodeTooLarge) {
			return nil
		}
		return kaiwa.Errorf(kaiwa.CodeInternal, "say = %v", err)
	})
	// Pinning the tenant to another version refuses new v1 sessions.
	s.setSettings(kaiwa.Settings{AllowedVersions: []string{"v2"}})
	eventually(t, "version pinning", func() error {
		c, err := client.Dial(ctx, url, client.Options{Token: s.token("bob", nil, nil)})
		if kaiwa.IsCode(err, kaiwa.CodeVersionNotAllowed) {
			return nil
		}
		if c != nil {
			c.Close()
		}
		return kaiwa.Errorf(kaiwa.CodeInternal, "v1 session of a v2-only tenant: %v", err)
	})
	// Browser origins: only the listed ones.
	s.setSettings(kaiwa.Settings{AllowedOrigins: []string{"https://*.example.com"}})
	eventually(t, "allowed origins", func() error {
		h := http.Header{"Origin": {"https://evil.example.org"}}
		c, err := client.Dial(ctx, url, client.Options{Token: s.token("carol", nil, nil), Header: h})
		if c != nil {
			c.Close()
		}
		if kaiwa.IsCode(err, kaiwa.CodeForbidden) {
			return nil
		}
		return kaiwa.Errorf(kaiwa.CodeInternal, "origin not refused: %v", err)
	})
	for origin, ok := range map[string]bool{"https://game.example.com": true, "https://evil.example.org": false, "": true} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		_, err := client.Dial(ctx, url, client.Options{Token: s.token("carol", nil, nil), Header: h})
		if ok && err != nil {
			t.Errorf("origin %q refused: %v", origin, err)
		}
		if !ok && !kaiwa.IsCode(err, kaiwa.CodeForbidden) {
			t.Errorf("origin %q: %v, want forbidden", origin, err)
		}
	}
}
