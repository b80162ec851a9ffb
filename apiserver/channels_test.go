package apiserver

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func TestPutChannel(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	rec := e.do("PUT", "/v1/api/channels/guild.42", e.keyA, `{"kind":"closed","title":"Knights of 42"}`)
	wantStatus(t, rec, http.StatusCreated)
	var ch kaiwa.Channel
	decode(t, rec, &ch)
	if ch.Name != "guild.42" || ch.Kind != kaiwa.ChannelClosed || ch.Title != "Knights of 42" || ch.CreatedAt.IsZero() {
		t.Errorf("created channel %+v", ch)
	}
	var raw map[string]any
	decode(t, rec, &raw)
	if _, ok := raw["tenant"]; ok {
		t.Errorf("channel JSON carries the tenant: %v", raw)
	}

	rec = e.do("PUT", "/v1/api/channels/guild.42", e.keyA, `{"kind":"open","title":"Renamed"}`)
	wantStatus(t, rec, http.StatusOK)
	var updated kaiwa.Channel
	decode(t, rec, &updated)
	if updated.Kind != kaiwa.ChannelOpen || updated.Title != "Renamed" || !updated.CreatedAt.Equal(ch.CreatedAt) {
		t.Errorf("updated channel %+v, created %+v", updated, ch)
	}

	// The title may be absent.
	wantStatus(t, e.do("PUT", "/v1/api/channels/quiet", e.keyA, `{"kind":"open"}`), http.StatusCreated)

	// Closing an open channel tells the live sessions (non-members leave).
	if got := e.bus.Controls(); len(got) != 0 {
		t.Fatalf("controls before any channel closed: %+v", got)
	}
	wantStatus(t, e.do("PUT", "/v1/api/channels/guild.42", e.keyA, `{"kind":"closed"}`), http.StatusOK)
	want := kaiwa.Control{Kind: kaiwa.ControlChannelClosed, Tenant: e.tenantA, Channel: "guild.42"}
	if got := e.bus.Controls(); len(got) != 1 || got[0] != want {
		t.Errorf("controls %+v, want [%+v]", got, want)
	}
}

func TestPutChannelRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	bad := []struct{ name, target, body string }{
		{"dm channel", "/v1/api/channels/dm:alice:bob", `{"kind":"closed"}`},
		{"encoded dm channel", "/v1/api/channels/dm%3Aalice%3Abob", `{"kind":"closed"}`},
		{"malformed dm channel", "/v1/api/channels/dm:bob:alice", `{"kind":"closed"}`},
		{"missing kind", "/v1/api/channels/lobby", `{"title":"x"}`},
		{"unknown kind", "/v1/api/channels/lobby", `{"kind":"secret"}`},
		{"kind in capitals", "/v1/api/channels/lobby", `{"kind":"OPEN"}`},
		{"no body", "/v1/api/channels/lobby", ``},
		{"title not a string", "/v1/api/channels/lobby", `{"kind":"open","title":7}`},
		{"title too long", "/v1/api/channels/lobby", `{"kind":"open","title":"` + strings.Repeat("é", kaiwa.MaxTitleLen+1) + `"}`},
		{"space in name", "/v1/api/channels/a%20b", `{"kind":"open"}`},
		{"encoded slash in name", "/v1/api/channels/a%2Fb", `{"kind":"open"}`},
		{"quote in name", "/v1/api/channels/x';--", `{"kind":"open"}`},
		{"name too long", "/v1/api/channels/" + strings.Repeat("c", 141), `{"kind":"open"}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do("PUT", tt.target, e.keyA, tt.body)
			wantError(t, rec, 400, kaiwa.CodeBadRequest)
		})
	}
	if n := len(e.channels(e.tenantA)); n != 0 {
		t.Errorf("%d channels made from bad requests", n)
	}
}

// TestChannelNamesWithColons checks that a name with ':' is the same
// channel whether the client sends the colons raw or percent-encoded.
func TestChannelNamesWithColons(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	wantStatus(t, e.do("PUT", "/v1/api/channels/team:red", e.keyA, `{"kind":"open"}`), http.StatusCreated)
	for _, target := range []string{"/v1/api/channels/team%3Ared", "/v1/api/channels/team%3ared", "/v1/api/channels/team:red"} {
		rec := e.do("PUT", target, e.keyA, `{"kind":"closed","title":"via `+target+`"}`)
		wantStatus(t, rec, http.StatusOK)
		var ch kaiwa.Channel
		decode(t, rec, &ch)
		if ch.Name != "team:red" {
			t.Errorf("%s: name %q, want team:red", target, ch.Name)
		}
	}
	// An escaped letter is the letter.
	wantStatus(t, e.do("PUT", "/v1/api/channels/te%61m:red", e.keyA, `{"kind":"open"}`), http.StatusOK)
	// A literal '%' is not part of any valid name, however it arrives.
	wantError(t, e.do("PUT", "/v1/api/channels/team%253Ared", e.keyA, `{"kind":"open"}`), 400, kaiwa.CodeBadRequest)
	if n := len(e.channels(e.tenantA)); n != 1 {
		t.Errorf("%d channels, want 1", n)
	}
}

func TestDeleteChannel(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "zone:1", "open")
	rec := e.do("DELETE", "/v1/api/channels/zone%3A1", e.keyA, "")
	wantStatus(t, rec, http.StatusNoContent)
	if _, err := shared.store.Channel(t.Context(), e.tenantA, "zone:1"); !kaiwa.IsCode(err, kaiwa.CodeNotFound) {
		t.Errorf("deleted channel still there: %v", err)
	}
	want := kaiwa.Control{Kind: kaiwa.ControlChannelDeleted, Tenant: e.tenantA, Channel: "zone:1"}
	if got := e.bus.Controls(); len(got) != 1 || got[0] != want {
		t.Errorf("controls %+v, want [%+v]", got, want)
	}

	// Deleting again is not_found, and still tells the UAs, so that a
	// retry after a failed publish reaches the live sessions.
	wantError(t, e.do("DELETE", "/v1/api/channels/zone:1", e.keyA, ""), 404, kaiwa.CodeNotFound)
	if got := e.bus.Controls(); len(got) != 2 || got[1] != want {
		t.Errorf("controls %+v", got)
	}

	wantError(t, e.do("DELETE", "/v1/api/channels/dm:alice:bob", e.keyA, ""), 400, kaiwa.CodeBadRequest)
	wantError(t, e.do("DELETE", "/v1/api/channels/bad%20name", e.keyA, ""), 400, kaiwa.CodeBadRequest)

	e.putChannel(e.keyA, "zone:2", "open")
	e.bus.fail(kaiwa.Errorf(kaiwa.CodeUnavailable, "bus down"))
	wantError(t, e.do("DELETE", "/v1/api/channels/zone:2", e.keyA, ""), 503, kaiwa.CodeUnavailable)
	e.bus.fail(nil)
	wantError(t, e.do("DELETE", "/v1/api/channels/zone:2", e.keyA, ""), 404, kaiwa.CodeNotFound)
	if got := e.bus.Controls(); got[len(got)-1].Channel != "zone:2" {
		t.Errorf("retry did not publish: %+v", got)
	}
}

func TestCreatedAtIsRFC3339(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	rec := e.do("PUT", "/v1/api/channels/lobby", e.keyA, `{"kind":"open"}`)
	var raw map[string]any
	decode(t, rec, &raw)
	s, _ := raw["created_at"].(string)
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		t.Errorf("created_at %q: %v", s, err)
	}
}
