package kaiwa

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestNames(t *testing.T) {
	for s, want := range map[string]bool{
		"alice": true, "a.b-c_d": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "a:b": false, "ü": false, "a'b": false,
	} {
		if ValidID(s) != want {
			t.Errorf("ValidID(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{
		"world": true, "guild:12.en": true, "dm:alice:bob": true, "@bob": true,
		"": false, "a b": false, "x';DROP": false, strings.Repeat("c", 141): false,
		"dm:bob:alice": false, "dm:alice": false, "dm:alice:alice": false, "@": false, "@a b": false,
	} {
		if got := CheckChannel(s) == nil; got != want {
			t.Errorf("CheckChannel(%q) ok = %v", s, got)
		}
	}
	if ch := DMChannel("bob", "alice"); ch != "dm:alice:bob" || DMChannel("alice", "bob") != ch {
		t.Errorf("DMChannel = %q", ch)
	}
	if a, b, ok := ParseDM("dm:alice:bob"); !ok || a != "alice" || b != "bob" {
		t.Errorf("ParseDM = %q %q %v", a, b, ok)
	}
	if u, ok := InboxUser(Inbox("bob")); !ok || u != "bob" || IsInbox("world") {
		t.Errorf("inbox round trip: %q %v", u, ok)
	}
}

func TestCredentials(t *testing.T) {
	c := NewCredential("acme.eu")
	if tn, ok := CredentialTenant(c); !ok || tn != "acme.eu" {
		t.Fatalf("CredentialTenant(%q) = %q, %v", c, tn, ok)
	}
	if NewCredential("acme.eu") == c {
		t.Error("two credentials are equal")
	}
	if h := HashCredential(c); len(h) != 64 || h == HashCredential(NewCredential("acme.eu")) {
		t.Errorf("hash %q", h)
	}
	for _, bad := range []string{"", "acme", "acme:short", ":" + strings.Repeat("a", 43), "a b:" + strings.Repeat("a", 43), "acme:" + strings.Repeat("!", 43)} {
		if _, ok := CredentialTenant(bad); ok {
			t.Errorf("CredentialTenant(%q) accepted", bad)
		}
	}
}

func TestCheckContent(t *testing.T) {
	s := Settings{MaxTextLen: 5, MaxDataBytes: 20}
	for _, tc := range []struct {
		text string
		data string
		code Code
	}{
		{"hello", "", ""},
		{"こんにちは", "", ""},
		{"hello!", "", CodeTooLarge},
		{"", `{"a":1}`, ""},
		{"", "", CodeBadRequest},
		{"", "null", CodeBadRequest},
		{"hi", `[1]`, CodeBadRequest},
		{"hi", `{"a":`, CodeBadRequest},
		{"hi", `{"pad":"` + strings.Repeat("x", 20) + `"}`, CodeTooLarge},
		{"\xff", "", CodeBadRequest},
	} {
		err := CheckContent(tc.text, []byte(tc.data), s)
		if ErrorCode(err) != tc.code {
			t.Errorf("CheckContent(%q, %q) = %v, want %q", tc.text, tc.data, err, tc.code)
		}
	}
}

func TestSettings(t *testing.T) {
	d := Settings{}.WithDefaults()
	if d.MaxTextLen != 1000 || d.NGPolicy != NGReject || d.RetentionDays != 90 || d.RateBurst != 20 {
		t.Errorf("defaults = %+v", d)
	}
	if s := (Settings{MaxTextLen: 7}).WithDefaults(); s.MaxTextLen != 7 || s.RateBurst != 20 {
		t.Errorf("WithDefaults kept %+v", s)
	}
	for _, bad := range []Settings{
		{MaxTextLen: -1}, {RateOps: math.NaN()}, {APIRate: math.Inf(1)}, {NGPolicy: "shout"},
		{RetentionDays: 5000}, {AllowedOrigins: []string{"a b"}}, {AllowedVersions: []string{""}},
	} {
		if ErrorCode(bad.Check()) != CodeBadRequest {
			t.Errorf("Check(%+v) accepted", bad)
		}
	}
	if err := (Settings{NGPolicy: NGMask, AllowedVersions: []string{"v2"}}).Check(); err != nil {
		t.Error(err)
	}
}

func TestPermissionsArePrefixes(t *testing.T) {
	id := Identity{Join: []string{"guild:7", "world"}, Publish: []string{"*"}}
	for ch, want := range map[string]bool{"world": true, "world.en": true, "guild:7": true, "guild:8": false, "team:1": false} {
		if id.CanJoin(ch) != want {
			t.Errorf("CanJoin(%q) = %v", ch, !want)
		}
	}
	if !id.CanPublish("dm:a:b") || (Identity{}).CanPublish("world") {
		t.Error("publish prefixes")
	}
}

func TestErrors(t *testing.T) {
	err := fmt.Errorf("outer: %w", Errorf(CodeNotFound, "no channel %s", "x"))
	if ErrorCode(err) != CodeNotFound || ErrorMessage(err) != "no channel x" || !IsCode(err, CodeNotFound) {
		t.Errorf("wrapped error: %v", err)
	}
	if ErrorCode(errors.New("boom")) != CodeInternal || ErrorMessage(errors.New("secret dsn")) != "internal error" || ErrorCode(nil) != "" {
		t.Error("internal errors")
	}
}

// fakes for the Moderator.
type memSanctions struct{ m map[string]Sanction }

func (f *memSanctions) PutSanction(_ context.Context, s Sanction) error {
	f.m[s.User+"/"+string(s.Kind)] = s
	return nil
}
func (f *memSanctions) DeleteSanction(_ context.Context, _ TenantID, u string, k SanctionKind) error {
	if _, ok := f.m[u+"/"+string(k)]; !ok {
		return Errorf(CodeNotFound, "none")
	}
	delete(f.m, u+"/"+string(k))
	return nil
}
func (f *memSanctions) Sanctions(context.Context, TenantID, string) ([]Sanction, error) {
	return nil, nil
}

type memBus struct{ controls []Control }

func (b *memBus) Publish(context.Context, Message) (Message, error) { return Message{}, nil }
func (b *memBus) PublishControl(_ context.Context, c Control) error {
	b.controls = append(b.controls, c)
	return nil
}
func (b *memBus) DeleteMessage(context.Context, TenantID, string, string) error { return nil }

type memEvents struct{ events []Event }

func (r *memEvents) Record(e Event) { r.events = append(r.events, e) }

func TestModerator(t *testing.T) {
	store, bus, events := &memSanctions{m: map[string]Sanction{}}, &memBus{}, &memEvents{}
	m := Moderator{Store: store, Bus: bus, Events: events}
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	if err := m.Sanction(ctx, Sanction{Tenant: "acme", User: "bob", Kind: SanctionMute, Until: until, Reason: "spam"}); err != nil {
		t.Fatal(err)
	}
	if c := bus.controls[0]; c.Kind != ControlMute || c.User != "bob" || !c.Until.Equal(until) || c.Tenant != "acme" {
		t.Errorf("control %+v", c)
	}
	if e := events.events[0]; e.Type != EventMute || e.User != "bob" || !strings.Contains(string(e.Detail), "spam") {
		t.Errorf("event %+v", e)
	}
	for _, bad := range []Sanction{
		{User: "a b", Kind: SanctionBan}, {User: "bob", Kind: "jail"},
		{User: "bob", Kind: SanctionBan, Until: time.Now().Add(-time.Minute)},
		{User: "bob", Kind: SanctionBan, Reason: strings.Repeat("r", 201)},
	} {
		if ErrorCode(m.Sanction(ctx, bad)) != CodeBadRequest {
			t.Errorf("Sanction(%+v) accepted", bad)
		}
	}
	if err := m.Lift(ctx, "acme", "bob", SanctionMute); err != nil {
		t.Fatal(err)
	}
	// Lifting what is not there still tells the servers, and says not_found.
	if err := m.Lift(ctx, "acme", "bob", SanctionBan); ErrorCode(err) != CodeNotFound {
		t.Errorf("lift of no ban: %v", err)
	}
	if err := m.Kick(ctx, "acme", "bob", "afk"); err != nil {
		t.Fatal(err)
	}
	var kinds []ControlKind
	for _, c := range bus.controls {
		kinds = append(kinds, c.Kind)
	}
	if fmt.Sprint(kinds) != fmt.Sprint([]ControlKind{ControlMute, ControlUnmute, ControlUnban, ControlKick}) {
		t.Errorf("controls %v", kinds)
	}
}
