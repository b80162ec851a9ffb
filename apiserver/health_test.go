package apiserver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, withConfig(func(c *Config) {
		c.Ready = func(context.Context) error { return errors.New("mysql down") }
	}))
	rec := e.do("GET", "/healthz", "", "")
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.String() != "{\"status\":\"ok\"}\n" {
		t.Errorf("body %q", rec.Body)
	}
	// Health is outside the version prefix and its auth.
	wantError(t, e.do("GET", "/v1/api/healthz", "", ""), 401, kaiwa.CodeUnauthorized)
	wantError(t, e.do("GET", "/v1/api/healthz", e.keyA, ""), 404, kaiwa.CodeNotFound)
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	var readyErr error
	var gotDeadline bool
	e := newTestEnv(t, withConfig(func(c *Config) {
		c.ReadyTimeout = time.Second
		c.Ready = func(ctx context.Context) error {
			_, gotDeadline = ctx.Deadline()
			return readyErr
		}
	}))
	rec := e.do("GET", "/readyz", "", "")
	wantStatus(t, rec, http.StatusOK)
	if !gotDeadline {
		t.Error("Ready ran without a deadline")
	}

	readyErr = kaiwa.Errorf(kaiwa.CodeUnavailable, "nats disconnected")
	msg := wantError(t, e.do("GET", "/readyz", "", ""), 503, kaiwa.CodeUnavailable)
	if !strings.Contains(msg, "nats disconnected") {
		t.Errorf("message %q", msg)
	}
	readyErr = errors.New("dial tcp 10.1.2.3:3306: refused")
	msg = wantError(t, e.do("GET", "/readyz", "", ""), 503, kaiwa.CodeUnavailable)
	if strings.Contains(msg, "10.1.2.3") {
		t.Errorf("readyz leaks an internal error: %q", msg)
	}

	// Without a Ready function the server is always ready.
	plain := newTestEnv(t)
	wantStatus(t, plain.do("GET", "/readyz", "", ""), http.StatusOK)
}
