package main

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// logRequests wraps h so that every request except the probes (/healthz,
// /readyz, /metrics, /debug/) is logged at info when its answer is
// written: a WebSocket upgrade as "connect", anything else as "request",
// with method, path (never the query), status, duration, the tenant the
// credential names and nginx's request id. The credential itself (an API
// key or a user token, "TENANT:SECRET") is never logged: only its part
// before the colon.
func logRequests(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/debug/") {
			h.ServeHTTP(w, r)
			return
		}
		began := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		msg := "request"
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			msg = "connect"
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		attrs := []any{"method", r.Method, "path", p, "status", status,
			"ms", float64(time.Since(began).Microseconds()) / 1000}
		if t := credentialTenant(r.Header.Get("Authorization")); t != "" {
			attrs = append(attrs, "tenant", t)
		}
		if id := r.Header.Get("X-Request-ID"); id != "" {
			attrs = append(attrs, "request_id", id)
		}
		if ip := r.Header.Get("X-Real-IP"); ip != "" {
			attrs = append(attrs, "remote", ip)
		}
		log.Info(msg, attrs...)
	})
}

// credentialTenant returns the tenant part of a "Bearer TENANT:SECRET"
// Authorization header, or "" when it has none. Nothing after the colon
// leaves this function.
func credentialTenant(h string) string {
	cred, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return ""
	}
	tenant, _, ok := strings.Cut(strings.TrimSpace(cred), ":")
	if !ok || len(tenant) > 64 {
		return ""
	}
	for _, c := range tenant {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return ""
		}
	}
	return tenant
}

// statusWriter records the status of the answer. A hijacked connection
// (a WebSocket) counts as 101 Switching Protocols.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Hijack implements http.Hijacker for the WebSocket upgrade.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Flush implements http.Flusher.
func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the original writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
