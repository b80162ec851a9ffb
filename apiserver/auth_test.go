package apiserver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "lobby", "open")
	gone := kaiwa.TenantID(uniqueID("gone-"))
	disabledKey, err := shared.store.CreateTenant(t.Context(), gone, "Gone")
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.store.DisableTenant(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	refused := map[string]string{
		"missing":          "",
		"empty bearer":     "Bearer ",
		"basic scheme":     "Basic dXNlcjpwYXNz",
		"no scheme":        e.keyA,
		"malformed key":    "Bearer not-a-key",
		"unknown key":      "Bearer " + kaiwa.NewCredential(e.tenantA),
		"other tenant's":   "Bearer " + kaiwa.NewCredential(e.tenantB),
		"disabled tenant":  "Bearer " + disabledKey,
		"key with garbage": "Bearer " + e.keyA + "x",
	}
	for name, header := range refused {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/api/channels/lobby/members", nil)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			wantError(t, rec, http.StatusUnauthorized, kaiwa.CodeUnauthorized)
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	for _, header := range []string{"Bearer " + e.keyA, "bearer " + e.keyA, "  Bearer   " + e.keyA + " "} {
		req := httptest.NewRequest("GET", "/v1/api/channels/lobby/members", nil)
		req.Header.Set("Authorization", header)
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		wantStatus(t, rec, http.StatusOK)
	}
	if logged := e.logs.String(); logged != "" {
		t.Errorf("refused keys were logged: %q", logged)
	}
}

func TestAuthStoreFailure(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.store.fail(failTenants, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	wantError(t, e.do("GET", "/v1/api/channels/lobby/members", e.keyA, ""), 503, kaiwa.CodeUnavailable)

	e.store.fail(failTenants, errors.New("driver: bad connection"))
	wantError(t, e.do("GET", "/v1/api/channels/lobby/members", e.keyA, ""), 500, kaiwa.CodeInternal)
}

// TestTenantConfinement checks that tenant B's key never reads or changes
// tenant A's data, even when both use the same names.
func TestTenantConfinement(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.keyA, e.keyB
	e.putChannel(a, "lobby", "closed")
	wantStatus(t, e.do("PUT", "/v1/api/channels/lobby/members/alice", a, ""), http.StatusCreated)
	wantStatus(t, e.do("POST", "/v1/api/channels/lobby/messages", a, `{"text":"for A only"}`), http.StatusCreated)
	rec := e.do("POST", "/v1/api/tokens", a, `{"user":"alice","ttl_seconds":600,"join":["*"]}`)
	wantStatus(t, rec, http.StatusCreated)
	var tokA tokenResponse
	decode(t, rec, &tokA)

	// B sees none of it.
	wantError(t, e.do("GET", "/v1/api/channels/lobby/members", b, ""), 404, kaiwa.CodeNotFound)
	wantError(t, e.do("POST", "/v1/api/channels/lobby/messages", b, `{"text":"x"}`), 404, kaiwa.CodeNotFound)
	wantError(t, e.do("PUT", "/v1/api/channels/lobby/members/mallory", b, ""), 404, kaiwa.CodeNotFound)
	wantError(t, e.do("DELETE", "/v1/api/channels/lobby/members/alice", b, ""), 404, kaiwa.CodeNotFound)
	wantError(t, e.do("DELETE", "/v1/api/channels/lobby", b, ""), 404, kaiwa.CodeNotFound)
	rec = e.do("GET", "/v1/api/channels/lobby/messages", b, "")
	wantStatus(t, rec, http.StatusOK)
	var page pageResponse
	decode(t, rec, &page)
	if len(page.Messages) != 0 {
		t.Errorf("tenant B read tenant A's log: %+v", page.Messages)
	}
	wantStatus(t, e.do("DELETE", "/v1/api/users/alice/tokens", b, ""), http.StatusNoContent)

	// B's own channel of the same name is B's.
	rec = e.do("PUT", "/v1/api/channels/lobby", b, `{"kind":"open","title":"B's lobby"}`)
	wantStatus(t, rec, http.StatusCreated)

	// A's data is untouched.
	chA, err := shared.store.Channel(t.Context(), e.tenantA, "lobby")
	if err != nil || chA.Kind != kaiwa.ChannelClosed || chA.Title != "T" {
		t.Errorf("tenant A's channel changed: %+v %v", chA, err)
	}
	rec = e.do("GET", "/v1/api/channels/lobby/members", a, "")
	wantStatus(t, rec, http.StatusOK)
	var members membersResponse
	decode(t, rec, &members)
	if len(members.Members) != 1 || members.Members[0] != "alice" {
		t.Errorf("tenant A's members %v, want [alice]", members.Members)
	}
	if id, err := shared.store.ResolveToken(t.Context(), tokA.Token); err != nil || id.Tenant != e.tenantA {
		t.Errorf("tenant A's token after B revoked alice: %+v %v", id, err)
	}
	for _, c := range e.bus.Controls() {
		if c.User == "alice" && c.Kind == kaiwa.ControlTokensRevoked && c.Tenant != e.tenantB {
			t.Errorf("B's revocation addressed tenant %s", c.Tenant)
		}
	}
	for _, m := range e.bus.Messages() {
		if m.Tenant != e.tenantA {
			t.Errorf("message published for %s", m.Tenant)
		}
	}
}
