package apiserver

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

// fakeStats answers each tenant's stats from the tenant alone; the
// secret tenant's carry figures the confinement test looks for.
type fakeStats struct{ secret kaiwa.TenantID }

func (f fakeStats) TenantStats(_ context.Context, t kaiwa.TenantID) (kaiwa.TenantStats, error) {
	st := kaiwa.TenantStats{Tenant: t, Processes: map[string]int{"ua": 1}, Sessions: kaiwa.SessionStats{ByVersion: map[string]int{}}}
	if t == f.secret {
		st.Sessions = kaiwa.SessionStats{Total: 4321, ByVersion: map[string]int{"secretA-v": 4321}}
	}
	return st, nil
}

func TestStatsAnswersTheCallersTenant(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var st kaiwa.TenantStats
	rec := e.do("GET", "/v1/api/stats", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	decode(t, rec, &st)
	if st.Tenant != e.tenantA || st.Sessions.Total != 4321 {
		t.Errorf("A's stats = %+v", st)
	}
	wantError(t, e.do("GET", "/v1/api/stats", "", ""), http.StatusUnauthorized, kaiwa.CodeUnauthorized)
	wantError(t, e.do("GET", "/v1/api/stats", "nobody:xyz", ""), http.StatusUnauthorized, kaiwa.CodeUnauthorized)
	wantError(t, e.do("POST", "/v1/api/stats", e.keyA, "{}"), http.StatusMethodNotAllowed, kaiwa.CodeBadRequest)
}

func TestStatsWithoutASource(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, withConfig(func(c *Config) { c.Stats = nil }))
	wantError(t, e.do("GET", "/v1/api/stats", e.keyA, ""), http.StatusServiceUnavailable, kaiwa.CodeUnavailable)
}

func TestMetricsCountRoutesAndTenants(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for range 3 {
		wantStatus(t, e.do("GET", "/v1/api/channels/lobby/members", e.keyA, ""), http.StatusNotFound)
	}
	wantStatus(t, e.do("GET", "/v1/api/settings", e.keyB, ""), http.StatusOK)
	rec := e.do("GET", "/metrics", "", "")
	wantStatus(t, rec, http.StatusOK)
	body := rec.Body.String()
	for _, want := range []string{
		`kaiwa_api_requests_total{method="GET",route="/v1/api/channels/:ch/members",status="404"} 3`,
		`kaiwa_api_tenant_requests_total{tenant="` + string(e.tenantA) + `"} 3`,
		`kaiwa_api_tenant_requests_total{tenant="` + string(e.tenantB) + `"} 1`,
		`kaiwa_api_errors_total{code="not_found"} 3`,
		`kaiwa_api_request_seconds_count{method="GET",route="/v1/api/settings"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
