package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

// wantStatuses is the code → status table of the API contract (docs/api.md).
var wantStatuses = map[kaiwa.Code]int{
	kaiwa.CodeBadRequest:        400,
	kaiwa.CodeUnknownOp:         400,
	kaiwa.CodeUnauthorized:      401,
	kaiwa.CodeTokenExpired:      401,
	kaiwa.CodeForbidden:         403,
	kaiwa.CodeBanned:            403,
	kaiwa.CodeVersionNotAllowed: 403,
	kaiwa.CodeMuted:             403,
	kaiwa.CodeNotFound:          404,
	kaiwa.CodeNotJoined:         409,
	kaiwa.CodeConflict:          409,
	kaiwa.CodeBlocked:           403,
	kaiwa.CodeTooLarge:          413,
	kaiwa.CodeNGWord:            422,
	kaiwa.CodeRejected:          422,
	kaiwa.CodeRateLimited:       429,
	kaiwa.CodeUnavailable:       503,
	kaiwa.CodeInternal:          500,
}

func TestStatusTableCoversEveryCode(t *testing.T) {
	t.Parallel()
	for _, code := range kaiwa.Codes {
		got, ok := statuses[code]
		if !ok {
			t.Errorf("code %q has no HTTP status in the statuses table", code)
			continue
		}
		if want, ok := wantStatuses[code]; !ok {
			t.Errorf("code %q is missing from the documented table in this test and docs/api.md", code)
		} else if got != want {
			t.Errorf("StatusOf(%q) = %d, want %d", code, got, want)
		}
	}
	if len(statuses) != len(kaiwa.Codes) {
		t.Errorf("statuses has %d entries, kaiwa.Codes %d", len(statuses), len(kaiwa.Codes))
	}
	if got := StatusOf("no_such_code"); got != 500 {
		t.Errorf("StatusOf(unknown) = %d, want 500", got)
	}
}

// TestErrorCodesOverHTTP makes a store fail with every code and checks the
// response: status from the table, the code, and the store's message except
// for internal errors, which are generic and logged.
func TestErrorCodesOverHTTP(t *testing.T) {
	t.Parallel()
	for _, code := range kaiwa.Codes {
		t.Run(string(code), func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			e.putChannel(e.keyA, "lobby", "open")
			e.store.fail(failChannels, kaiwa.Errorf(code, "detail of %s", code))
			rec := e.do("GET", "/v1/api/channels/lobby/members", e.keyA, "")
			msg := wantError(t, rec, wantStatuses[code], code)
			logged := e.logs.String()
			if code == kaiwa.CodeInternal {
				if msg != "internal error" {
					t.Errorf("internal message %q reached the client", msg)
				}
				if !strings.Contains(logged, "detail of internal") {
					t.Errorf("internal error not logged: %q", logged)
				}
				return
			}
			if msg != "detail of "+string(code) {
				t.Errorf("message %q, want the store's", msg)
			}
			if logged != "" {
				t.Errorf("a %s error was logged: %q", code, logged)
			}
		})
	}
}

func TestInternalErrorIsLoggedWithoutSecrets(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "lobby", "open")
	e.store.fail(failChannels, errors.New("dial tcp 10.0.0.7:3306: connection refused"))
	rec := e.do("GET", "/v1/api/channels/lobby/members?x=1", e.keyA, "")
	msg := wantError(t, rec, http.StatusInternalServerError, kaiwa.CodeInternal)
	if strings.Contains(msg, "10.0.0.7") {
		t.Errorf("client saw internal detail: %q", msg)
	}
	logged := e.logs.String()
	for _, want := range []string{"method=GET", "path=/v1/api/channels/lobby/members", "connection refused"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log %q lacks %q", logged, want)
		}
	}
	if strings.Contains(logged, e.keyA) || strings.Contains(logged, "Bearer") {
		t.Errorf("log carries the API key: %q", logged)
	}
}

func TestPanicIsAnInternalError(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "lobby", "open")
	e.store.panicInMembers("store exploded")
	rec := e.do("GET", "/v1/api/channels/lobby/members", e.keyA, "")
	wantError(t, rec, http.StatusInternalServerError, kaiwa.CodeInternal)
	if !strings.Contains(e.logs.String(), "store exploded") {
		t.Errorf("panic not logged: %q", e.logs.String())
	}
}

func TestEchoErrorsHaveTheErrorShape(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tests := []struct {
		method, target, key string
		status              int
		code                kaiwa.Code
	}{
		{"GET", "/v1/api/nope", e.keyA, 404, kaiwa.CodeNotFound},
		{"GET", "/v1/api/channels/lobby/nope", e.keyA, 404, kaiwa.CodeNotFound},
		{"GET", "/v1/api/users/alice/tokens/x", e.keyA, 404, kaiwa.CodeNotFound},
		{"GET", "/nope", "", 404, kaiwa.CodeNotFound},
		{"GET", "/v2/api/tokens", e.keyA, 404, kaiwa.CodeNotFound},
		// Unknown calls under the API prefix need a key, like known ones.
		{"GET", "/v1/api/nope", "", 401, kaiwa.CodeUnauthorized},
		{"PATCH", "/v1/api/channels/lobby", e.keyA, 405, kaiwa.CodeBadRequest},
		{"GET", "/v1/api/tokens", e.keyA, 405, kaiwa.CodeBadRequest},
		{"POST", "/healthz", "", 405, kaiwa.CodeBadRequest},
	}
	for _, tt := range tests {
		rec := e.do(tt.method, tt.target, tt.key, "")
		t.Run(tt.method+tt.target, func(t *testing.T) {
			wantError(t, rec, tt.status, tt.code)
			if tt.status == 405 && rec.Header().Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}
	if logged := e.logs.String(); logged != "" {
		t.Errorf("client errors were logged: %q", logged)
	}
}

func TestResponsesAreNotCached(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	rec := e.do("POST", "/v1/api/tokens", e.keyA, `{"user":"alice","ttl_seconds":60}`)
	wantStatus(t, rec, http.StatusCreated)
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q on a token response, want no-store", got)
	}
}

func TestNewServerRefusesMissingDependencies(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	full := e.config()
	breakers := map[string]func(*Config){
		"Core":      func(c *Config) { c.Core = nil },
		"Tenants":   func(c *Config) { c.Tenants = nil },
		"Channels":  func(c *Config) { c.Channels = nil },
		"Log":       func(c *Config) { c.Log = nil },
		"NG":        func(c *Config) { c.NG = nil },
		"Sanctions": func(c *Config) { c.Sanctions = nil },
		"Events":    func(c *Config) { c.Events = nil },
		"Version":   func(c *Config) { c.Version = "v1/x" },
		"Core.Bus": func(c *Config) {
			core := *c.Core
			core.Bus = nil
			c.Core = &core
		},
		"Core.Events": func(c *Config) {
			core := *c.Core
			core.Events = nil
			c.Core = &core
		},
	}
	for name, breakIt := range breakers {
		cfg := full
		breakIt(&cfg)
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), name) {
					t.Errorf("NewServer without a valid %s: panic %v", name, r)
				}
			}()
			NewServer(cfg)
		}()
	}
}

func TestGoneClientIsNotLogged(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "lobby", "open")
	e.store.fail(failChannels, fmt.Errorf("query members: %w", context.Canceled))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/v1/api/channels/lobby/members", nil)
	req.Header.Set("Authorization", "Bearer "+e.keyA)
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	wantError(t, rec, http.StatusInternalServerError, kaiwa.CodeInternal)
	if logged := e.logs.String(); logged != "" {
		t.Errorf("a canceled request was logged: %q", logged)
	}
}
