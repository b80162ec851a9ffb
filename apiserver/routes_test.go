package apiserver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// TestEveryAPIRouteNeedsAKey walks the routes the server registered, so a
// route added later is covered too: each one under the version prefix
// refuses a request without a key, except the OpenAPI document, and only
// the health routes are outside.
func TestEveryAPIRouteNeedsAKey(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	srv, ok := e.handler.(*echo.Echo)
	if !ok {
		t.Fatalf("NewServer returned %T, want *echo.Echo", e.handler)
	}
	params := strings.NewReplacer(":ch", "lobby", ":user", "alice", ":id", "m1", ":word", "bad")
	n := 0
	for _, r := range srv.Routes() {
		if !strings.HasPrefix(r.Path, "/v1/api/") {
			if r.Path != "/healthz" && r.Path != "/readyz" && r.Path != "/metrics" {
				t.Errorf("route %s %s is outside /v1/api", r.Method, r.Path)
			}
			continue
		}
		n++
		target := params.Replace(r.Path)
		rec := e.do(r.Method, target, "", `{}`)
		if r.Path == "/v1/api/openapi.json" {
			if rec.Code != http.StatusOK {
				t.Errorf("%s %s without a key: %d, want 200", r.Method, target, rec.Code)
			}
			continue
		}
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s %s without a key: %d %s", r.Method, target, rec.Code, rec.Body)
		}
	}
	if n < 29 {
		t.Errorf("%d API routes, want at least the 29 of v1", n)
	}
	if got := len(e.bus.Controls()) + len(e.bus.Messages()); got != 0 {
		t.Errorf("unauthenticated requests published %d items", got)
	}
	if got := len(e.events.ofTenant(e.tenantA)) + len(e.events.ofTenant(e.tenantB)); got != 0 {
		t.Errorf("unauthenticated requests recorded %d events", got)
	}
}

func TestVersionPrefix(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, withConfig(func(c *Config) { c.Version = "v2" }))
	wantStatus(t, e.do("PUT", "/v2/api/channels/lobby", e.keyA, `{"kind":"open"}`), http.StatusCreated)
	wantError(t, e.do("PUT", "/v1/api/channels/lobby", e.keyA, `{"kind":"open"}`), 404, kaiwa.CodeNotFound)
	wantStatus(t, e.do("GET", "/healthz", "", ""), http.StatusOK)
}
