package apiserver

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func TestMembers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "guild:7", "closed")

	rec := e.do("PUT", "/v1/api/channels/guild:7/members/carol", e.keyA, "")
	wantStatus(t, rec, http.StatusCreated)
	var m memberResponse
	decode(t, rec, &m)
	if m != (memberResponse{Channel: "guild:7", User: "carol"}) {
		t.Errorf("member response %+v", m)
	}
	wantStatus(t, e.do("PUT", "/v1/api/channels/guild%3A7/members/alice", e.keyA, ""), http.StatusCreated)
	wantStatus(t, e.do("PUT", "/v1/api/channels/guild%3A7/members/alice", e.keyA, ""), http.StatusOK)
	wantStatus(t, e.do("PUT", "/v1/api/channels/guild:7/members/b.o_b-1", e.keyA, ""), http.StatusCreated)

	rec = e.do("GET", "/v1/api/channels/guild%3A7/members", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	var list membersResponse
	decode(t, rec, &list)
	if want := []string{"alice", "b.o_b-1", "carol"}; !slices.Equal(list.Members, want) {
		t.Errorf("members %v, want %v", list.Members, want)
	}

	wantStatus(t, e.do("DELETE", "/v1/api/channels/guild:7/members/carol", e.keyA, ""), http.StatusNoContent)
	wantError(t, e.do("DELETE", "/v1/api/channels/guild:7/members/carol", e.keyA, ""), 404, kaiwa.CodeNotFound)

	added := kaiwa.Control{Kind: kaiwa.ControlMemberAdded, Tenant: e.tenantA, Channel: "guild:7"}
	removed := kaiwa.Control{Kind: kaiwa.ControlMemberRemoved, Tenant: e.tenantA, Channel: "guild:7", User: "carol"}
	var want []kaiwa.Control
	for _, u := range []string{"carol", "alice", "alice", "b.o_b-1"} {
		c := added
		c.User = u
		want = append(want, c)
	}
	want = append(want, removed, removed)
	if got := e.bus.Controls(); !slices.Equal(got, want) {
		t.Errorf("controls\n got %+v\nwant %+v", got, want)
	}

	rec = e.do("GET", "/v1/api/channels/guild:7/members", e.keyA, "")
	decode(t, rec, &list)
	if want := []string{"alice", "b.o_b-1"}; !slices.Equal(list.Members, want) {
		t.Errorf("members %v, want %v", list.Members, want)
	}
}

func TestMembersOfEmptyChannelIsAnArray(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "empty", "closed")
	rec := e.do("GET", "/v1/api/channels/empty/members", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	if got := rec.Body.String(); got != "{\"members\":[]}\n" {
		t.Errorf("body %q, want an empty array", got)
	}
}

func TestMembersRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "guild", "closed")
	tests := []struct {
		method, target string
		status         int
		code           kaiwa.Code
	}{
		{"PUT", "/v1/api/channels/nowhere/members/alice", 404, kaiwa.CodeNotFound},
		{"GET", "/v1/api/channels/nowhere/members", 404, kaiwa.CodeNotFound},
		{"DELETE", "/v1/api/channels/nowhere/members/alice", 404, kaiwa.CodeNotFound},
		{"PUT", "/v1/api/channels/guild/members/a%20b", 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/channels/guild/members/al:ice", 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/channels/guild/members/al%3Aice", 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/channels/guild/members/x'%20OR%20'1'='1", 400, kaiwa.CodeBadRequest},
		{"DELETE", "/v1/api/channels/guild/members/%E2%98%83", 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/channels/bad%2Fname/members/alice", 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/channels/dm:alice:bob/members/alice", 400, kaiwa.CodeBadRequest},
		{"DELETE", "/v1/api/channels/dm%3Aalice%3Abob/members/alice", 400, kaiwa.CodeBadRequest},
		{"GET", "/v1/api/channels/dm:alice:bob/members", 400, kaiwa.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.target, func(t *testing.T) {
			wantError(t, e.do(tt.method, tt.target, e.keyA, ""), tt.status, tt.code)
		})
	}

	e.bus.fail(kaiwa.Errorf(kaiwa.CodeUnavailable, "bus down"))
	wantError(t, e.do("PUT", "/v1/api/channels/guild/members/alice", e.keyA, ""), 503, kaiwa.CodeUnavailable)
	e.bus.fail(nil)
	// The retry finds alice already a member and still tells the UAs.
	wantStatus(t, e.do("PUT", "/v1/api/channels/guild/members/alice", e.keyA, ""), http.StatusOK)
	if got := e.bus.Controls(); len(got) == 0 || got[len(got)-1].User != "alice" {
		t.Errorf("retry did not publish: %+v", got)
	}
}

// TestMembershipReachesTheBus checks, on the bus itself rather than
// through the spy, that a membership change reaches a UA holding the
// user's sessions.
func TestMembershipReachesTheBus(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "guild", "closed")
	got := make(chan kaiwa.Control, 4)
	sub, err := shared.bus.SubscribeUser(e.tenantA, "alice", kaiwa.Handler{Control: func(c *kaiwa.Control) { got <- *c }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	wantStatus(t, e.do("PUT", "/v1/api/channels/guild/members/alice", e.keyA, ""), http.StatusCreated)
	wantStatus(t, e.do("DELETE", "/v1/api/channels/guild/members/alice", e.keyA, ""), http.StatusNoContent)
	for _, kind := range []kaiwa.ControlKind{kaiwa.ControlMemberAdded, kaiwa.ControlMemberRemoved} {
		select {
		case c := <-got:
			if want := (kaiwa.Control{Kind: kind, Tenant: e.tenantA, Channel: "guild", User: "alice"}); c != want {
				t.Errorf("control %+v, want %+v", c, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s control on the bus", kind)
		}
	}
}
