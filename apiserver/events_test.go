package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

func TestListEvents(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	// Recorded through the bus, written to the log by the log writer.
	add := func(tenant kaiwa.TenantID, typ, user, ch string, ts int64, detail string) {
		ev := kaiwa.Event{Tenant: tenant, Type: typ, User: user, Channel: ch, TS: ts}
		if detail != "" {
			ev.Detail = json.RawMessage(detail)
		}
		shared.bus.Record(ev)
	}
	add(e.tenantA, kaiwa.EventConnect, "alice", "", base, "")
	add(e.tenantA, kaiwa.EventJoin, "alice", "lobby", base+1000, `{"version":"v2"}`)
	add(e.tenantA, kaiwa.EventNGBlocked, "alice", "lobby", base+2000, "")
	add(e.tenantA, kaiwa.EventJoin, "bob", "guild:1", base+3000, "")
	add(e.tenantA, kaiwa.EventKick, "bob", "", base+4000, "")
	add(e.tenantB, kaiwa.EventJoin, "alice", "lobby", base+1500, "")
	for tenant, n := range map[kaiwa.TenantID]int{e.tenantA: 5, e.tenantB: 1} {
		testenv.Eventually(t, "the events are in the log", 5*time.Second, func() bool {
			page, err := shared.store.Events(t.Context(), tenant, kaiwa.EventQuery{Limit: 10})
			return err == nil && len(page.Events) == n
		})
	}

	list := func(query string) (string, eventsResponse) {
		t.Helper()
		rec := e.do("GET", "/v1/api/events"+query, e.keyA, "")
		wantStatus(t, rec, http.StatusOK)
		var p eventsResponse
		decode(t, rec, &p)
		var s []string
		for _, ev := range p.Events {
			s = append(s, ev.Type+":"+ev.User+":"+ev.Channel)
		}
		return strings.Join(s, ","), p
	}

	got, p := list("")
	if got != "kick:bob:,join:bob:guild:1,ng_blocked:alice:lobby,join:alice:lobby,connect:alice:" || p.Next != "" {
		t.Errorf("all events, newest first: %s next %q", got, p.Next)
	}
	if p.Events[3].ID == "" || p.Events[3].TS != base+1000 || string(p.Events[3].Detail) != `{"version":"v2"}` {
		t.Errorf("event %+v", p.Events[3])
	}
	if got, _ = list("?type=join"); got != "join:bob:guild:1,join:alice:lobby" {
		t.Errorf("type=join: %s", got)
	}
	if got, _ = list("?user=alice&ch=lobby"); got != "ng_blocked:alice:lobby,join:alice:lobby" {
		t.Errorf("user and ch: %s", got)
	}
	if got, _ = list("?ch=guild%3A1"); got != "join:bob:guild:1" {
		t.Errorf("ch: %s", got)
	}
	if got, _ = list(fmt.Sprintf("?since=%d&until=%s", base+1000, time.UnixMilli(base+3000).UTC().Format(time.RFC3339))); got != "ng_blocked:alice:lobby,join:alice:lobby" {
		t.Errorf("time range: %s", got)
	}
	got, p = list("?limit=2")
	if got != "kick:bob:,join:bob:guild:1" || p.Next == "" {
		t.Fatalf("page 1: %s next %q", got, p.Next)
	}
	if got, p = list("?limit=2&before=" + p.Next); got != "ng_blocked:alice:lobby,join:alice:lobby" {
		t.Errorf("page 2: %s", got)
	}
	if got, p = list("?limit=2&before=" + p.Next); got != "connect:alice:" || p.Next != "" {
		t.Errorf("page 3: %s next %q", got, p.Next)
	}
	if q := e.store.lastEventQuery(); q.Limit != 2 || q.Before == "" {
		t.Errorf("query reached the log as %+v", q)
	}

	rec := e.do("GET", "/v1/api/events?type=nothing_here", e.keyA, "")
	if body := rec.Body.String(); body != "{\"events\":[]}\n" {
		t.Errorf("empty page %s", body)
	}
}

func TestListEventsRefusesBadParameters(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, q := range []string{
		"type=Join", "type=a%20b", "type=" + strings.Repeat("t", 65), "type=x.y",
		"user=a%20b", "ch=a%20b", "ch=dm:b:a", "since=later", "until=-1",
		"since=1741000000000&until=1740000000000", "limit=0", "limit=501",
		"before=a%0Ab", "before=" + strings.Repeat("e", 129),
	} {
		t.Run(q, func(t *testing.T) {
			wantError(t, e.do("GET", "/v1/api/events?"+q, e.keyA, ""), 400, kaiwa.CodeBadRequest)
		})
	}
	e.store.fail(failEvents, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	wantError(t, e.do("GET", "/v1/api/events", e.keyA, ""), 503, kaiwa.CodeUnavailable)
}

// TestAPIRecordsWhatItChanges checks the events of the calls that change
// channels, members, tokens and keys: each names the API as its actor.
func TestAPIRecordsWhatItChanges(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "lobby", "open")
	e.putChannel(e.keyA, "lobby", "closed")
	e.do("PUT", "/v1/api/channels/lobby/members/alice", e.keyA, "")
	e.do("PUT", "/v1/api/channels/lobby/members/alice", e.keyA, "")
	e.do("DELETE", "/v1/api/channels/lobby/members/alice", e.keyA, "")
	e.do("DELETE", "/v1/api/channels/lobby/members/alice", e.keyA, "")
	e.do("POST", "/v1/api/tokens", e.keyA, `{"user":"bob","ttl_seconds":60}`)
	e.do("DELETE", "/v1/api/users/bob/tokens", e.keyA, "")
	e.do("DELETE", "/v1/api/channels/lobby", e.keyA, "")
	e.do("DELETE", "/v1/api/channels/lobby", e.keyA, "")
	wantStatus(t, e.do("POST", "/v1/api/keys", e.keyA, ""), http.StatusCreated)
	keys := e.keys(e.keyA)
	wantStatus(t, e.do("DELETE", fmt.Sprintf("/v1/api/keys/%d", keys[0].ID), e.keyA, ""), http.StatusNoContent)

	var got []string
	for _, ev := range e.events.ofTenant(e.tenantA) {
		got = append(got, ev.Type+"|"+ev.User+"|"+ev.Channel+"|"+string(ev.Detail))
	}
	want := []string{
		`channel_put||lobby|{"actor":"api","created":true,"kind":"open"}`,
		`channel_put||lobby|{"actor":"api","created":false,"kind":"closed"}`,
		`member_added|alice|lobby|{"actor":"api"}`,
		`member_removed|alice|lobby|{"actor":"api"}`,
		`token_revoked|bob||{"actor":"api","tokens":1}`,
		`channel_deleted||lobby|{"actor":"api"}`,
		`key_added|||{"actor":"api"}`,
		fmt.Sprintf(`key_revoked|||{"actor":"api","id":%d}`, keys[0].ID),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
