package apiserver

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func TestKick(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	rec := e.do("POST", "/v1/api/users/alice/kick", e.keyA, `{"reason":"spamming the lobby"}`)
	wantStatus(t, rec, http.StatusNoContent)
	want := kaiwa.Control{Kind: kaiwa.ControlKick, Tenant: e.tenantA, User: "alice", Reason: "spamming the lobby"}
	if got := e.bus.Controls(); len(got) != 1 || got[0] != want {
		t.Errorf("controls %+v, want [%+v]", got, want)
	}
	ev := e.events.ofTenant(e.tenantA)
	if len(ev) != 1 || ev[0].Type != kaiwa.EventKick || ev[0].User != "alice" ||
		!strings.Contains(string(ev[0].Detail), "spamming the lobby") {
		t.Errorf("events %+v", ev)
	}

	// The body may be left out.
	wantStatus(t, e.do("POST", "/v1/api/users/bob/kick", e.keyA, ""), http.StatusNoContent)
	if got := e.bus.Controls(); len(got) != 2 || got[1].User != "bob" || got[1].Reason != "" {
		t.Errorf("controls %+v", got)
	}

	for _, tt := range []struct{ target, body string }{
		{"/v1/api/users/a%20b/kick", ""},
		{"/v1/api/users/alice/kick", `{"reason":"` + strings.Repeat("r", kaiwa.MaxReasonLen+1) + `"}`},
		{"/v1/api/users/alice/kick", `{"reason":7}`},
		{"/v1/api/users/alice/kick", `"spam"`},
	} {
		wantError(t, e.do("POST", tt.target, e.keyA, tt.body), 400, kaiwa.CodeBadRequest)
	}
	e.bus.fail(kaiwa.Errorf(kaiwa.CodeUnavailable, "bus unavailable"))
	wantError(t, e.do("POST", "/v1/api/users/alice/kick", e.keyA, ""), 503, kaiwa.CodeUnavailable)
	e.bus.fail(nil)
	if n := len(e.bus.Controls()); n != 2 {
		t.Errorf("%d controls, want 2", n)
	}
}

func TestBanAndMute(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	until := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)

	rec := e.do("PUT", "/v1/api/users/alice/ban", e.keyA,
		`{"until":"`+until.Format(time.RFC3339)+`","reason":"cheating"}`)
	wantStatus(t, rec, http.StatusOK)
	var s sanctionJSON
	decode(t, rec, &s)
	if s.User != "alice" || s.Kind != kaiwa.SanctionBan || s.Until != until.Format(time.RFC3339) || s.Reason != "cheating" {
		t.Errorf("ban %+v", s)
	}
	if created, err := time.Parse(time.RFC3339, s.CreatedAt); err != nil || time.Since(created) > time.Minute {
		t.Errorf("created_at %q: %v", s.CreatedAt, err)
	}
	wantBan := kaiwa.Control{Kind: kaiwa.ControlBan, Tenant: e.tenantA, User: "alice", Reason: "cheating"}
	if got := e.bus.Controls(); len(got) != 1 || !got[0].Until.Equal(until) || func() kaiwa.Control { c := got[0]; c.Until = time.Time{}; return c }() != wantBan {
		t.Errorf("controls %+v", got)
	}

	// until as milliseconds since the epoch, as a number or a string.
	rec = e.do("PUT", "/v1/api/users/alice/mute", e.keyA, fmt.Sprintf(`{"until":%d}`, until.UnixMilli()))
	wantStatus(t, rec, http.StatusOK)
	s = sanctionJSON{}
	decode(t, rec, &s)
	if s.Kind != kaiwa.SanctionMute || s.Until != until.Format(time.RFC3339) || s.Reason != "" {
		t.Errorf("mute %+v", s)
	}
	wantStatus(t, e.do("PUT", "/v1/api/users/carol/mute", e.keyA, fmt.Sprintf(`{"until":"%d"}`, until.UnixMilli())), http.StatusOK)

	// Without a body (or until null): until lifted.
	rec = e.do("PUT", "/v1/api/users/bob/ban", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	var raw map[string]any
	decode(t, rec, &raw)
	if _, ok := raw["until"]; ok || raw["kind"] != "ban" {
		t.Errorf("ban without until %v", raw)
	}
	wantStatus(t, e.do("PUT", "/v1/api/users/bob/mute", e.keyA, `{"until":null,"reason":"flood"}`), http.StatusOK)

	sanctions := func(user string) string {
		t.Helper()
		rec := e.do("GET", "/v1/api/users/"+user+"/sanctions", e.keyA, "")
		wantStatus(t, rec, http.StatusOK)
		var got sanctionsResponse
		decode(t, rec, &got)
		var kinds []string
		for _, s := range got.Sanctions {
			if s.User != user {
				t.Errorf("sanction of %s listed for %s", s.User, user)
			}
			kinds = append(kinds, string(s.Kind)+":"+s.Reason)
		}
		return strings.Join(kinds, ",")
	}
	if got := sanctions("alice"); got != "ban:cheating,mute:" {
		t.Errorf("alice's sanctions %q", got)
	}
	if got := sanctions("bob"); got != "ban:,mute:flood" {
		t.Errorf("bob's sanctions %q", got)
	}
	rec = e.do("GET", "/v1/api/users/dave/sanctions", e.keyA, "")
	if body := rec.Body.String(); body != "{\"sanctions\":[]}\n" {
		t.Errorf("no sanctions: %s", body)
	}

	// Lifting.
	wantStatus(t, e.do("DELETE", "/v1/api/users/alice/mute", e.keyA, ""), http.StatusNoContent)
	if got := e.bus.Controls(); got[len(got)-1] != (kaiwa.Control{Kind: kaiwa.ControlUnmute, Tenant: e.tenantA, User: "alice"}) {
		t.Errorf("unmute control %+v", got[len(got)-1])
	}
	wantError(t, e.do("DELETE", "/v1/api/users/alice/mute", e.keyA, ""), 404, kaiwa.CodeNotFound)
	wantStatus(t, e.do("DELETE", "/v1/api/users/alice/ban", e.keyA, ""), http.StatusNoContent)
	if got := sanctions("alice"); got != "" {
		t.Errorf("alice's sanctions after lifting %q", got)
	}

	var types []string
	for _, ev := range e.events.ofTenant(e.tenantA) {
		types = append(types, ev.Type+":"+ev.User)
	}
	want := "ban:alice,mute:alice,mute:carol,ban:bob,mute:bob,unmute:alice,unban:alice"
	if got := strings.Join(types, ","); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
}

func TestSanctionsRefuseBadRequests(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	past := time.Now().Add(-time.Hour)
	bad := []struct{ method, target, body string }{
		{"PUT", "/v1/api/users/alice/ban", `{"until":"` + past.Format(time.RFC3339) + `"}`},
		{"PUT", "/v1/api/users/alice/ban", fmt.Sprintf(`{"until":%d}`, past.UnixMilli())},
		{"PUT", "/v1/api/users/alice/mute", `{"until":"tomorrow"}`},
		{"PUT", "/v1/api/users/alice/mute", `{"until":"2030-01-01"}`},
		{"PUT", "/v1/api/users/alice/mute", `{"until":true}`},
		{"PUT", "/v1/api/users/alice/mute", `{"until":{}}`},
		{"PUT", "/v1/api/users/alice/mute", `{"until":-1}`},
		{"PUT", "/v1/api/users/alice/mute", `{"until":1.5}`},
		{"PUT", "/v1/api/users/alice/mute", `{"until":1e30}`},
		{"PUT", "/v1/api/users/alice/mute", `{"until":"1e3"}`},
		{"PUT", "/v1/api/users/alice/mute", `{"reason":"` + strings.Repeat("é", kaiwa.MaxReasonLen+1) + `"}`},
		{"PUT", "/v1/api/users/alice/mute", `{"reason":"x"} {}`},
		{"PUT", "/v1/api/users/a%20b/ban", ``},
		{"DELETE", "/v1/api/users/a%20b/ban", ``},
		{"GET", "/v1/api/users/a%20b/sanctions", ``},
	}
	for _, tt := range bad {
		t.Run(tt.method+tt.target+tt.body, func(t *testing.T) {
			wantError(t, e.do(tt.method, tt.target, e.keyA, tt.body), 400, kaiwa.CodeBadRequest)
		})
	}
	msg := wantError(t, e.do("PUT", "/v1/api/users/alice/ban", e.keyA, `{"until":"soon"}`), 400, kaiwa.CodeBadRequest)
	if !strings.Contains(msg, "until") {
		t.Errorf("message %q does not name until", msg)
	}
	if n := len(e.bus.Controls()) + len(e.events.ofTenant(e.tenantA)); n != 0 {
		t.Errorf("bad requests had %d effects", n)
	}

	e.store.fail(failSanctions, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	wantError(t, e.do("PUT", "/v1/api/users/alice/ban", e.keyA, ""), 503, kaiwa.CodeUnavailable)
	wantError(t, e.do("DELETE", "/v1/api/users/alice/ban", e.keyA, ""), 503, kaiwa.CodeUnavailable)
	wantError(t, e.do("GET", "/v1/api/users/alice/sanctions", e.keyA, ""), 503, kaiwa.CodeUnavailable)
}

// TestSanctionsRunOut moves the clock past a mute's end instead of waiting
// for it: the mute is no longer listed, and lifting it is not_found.
func TestSanctionsRunOut(t *testing.T) {
	t.Parallel()
	clock := &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := newTestEnv(t, withClock(clock))
	until := clock.Now().Add(time.Hour)
	wantStatus(t, e.do("PUT", "/v1/api/users/alice/mute", e.keyA, `{"until":"`+until.Format(time.RFC3339)+`"}`), http.StatusOK)
	list := func() string {
		t.Helper()
		rec := e.do("GET", "/v1/api/users/alice/sanctions", e.keyA, "")
		wantStatus(t, rec, http.StatusOK)
		return rec.Body.String()
	}
	if got := list(); !strings.Contains(got, `"kind":"mute"`) || !strings.Contains(got, `"created_at":"2030-01-02T03:04:05Z"`) {
		t.Errorf("sanctions in force: %s", got)
	}
	clock.set(until)
	if got := list(); got != "{\"sanctions\":[]}\n" {
		t.Errorf("sanctions after the mute ran out: %s", got)
	}
	// A mute that ends in the past of the clock is refused.
	wantError(t, e.do("PUT", "/v1/api/users/alice/mute", e.keyA, `{"until":"`+until.Add(-time.Minute).Format(time.RFC3339)+`"}`), 400, kaiwa.CodeBadRequest)
}
