package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// syncLog is a log destination read by the test while handlers write.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogRequestsNamesTenantNeverCredential(t *testing.T) {
	t.Parallel()
	var logs syncLog
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	h := logRequests(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/ws":
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			c.Close(websocket.StatusNormalClosure, "")
		case "/v1/api/missing":
			http.NotFound(w, r)
		default:
			w.Write([]byte("ok"))
		}
	}), log)
	srv := httptest.NewServer(h)
	defer srv.Close()

	const secret = "s3cr3t-part-of-the-credential"
	get := func(path, auth string) {
		req, _ := http.NewRequest("GET", srv.URL+path+"?token=q-"+secret, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.Header.Set("X-Request-ID", "rid-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("/v1/api/channels", "Bearer acme:"+secret)
	get("/v1/api/missing", "Bearer "+secret) // no tenant part
	get("/healthz", "")
	get("/readyz", "")
	get("/metrics", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer acme:" + secret}, "X-Request-ID": {"rid-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()

	var got []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		got = logs.lines(t)
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 3 {
		t.Fatalf("%d lines logged, want 3 (no probes): %v", len(got), got)
	}
	want := []struct {
		msg, path, tenant string
		status            float64
	}{
		{"request", "/v1/api/channels", "acme", 200},
		{"request", "/v1/api/missing", "", 404},
		{"connect", "/v1/ws", "acme", 101},
	}
	for i, w := range want {
		g := got[i]
		if g["msg"] != w.msg || g["path"] != w.path || g["status"] != w.status || g["level"] != "INFO" || g["request_id"] != "rid-1" {
			t.Errorf("line %d = %v, want %+v", i, g, w)
		}
		if tn, _ := g["tenant"].(string); tn != w.tenant {
			t.Errorf("line %d tenant %q, want %q", i, tn, w.tenant)
		}
	}
	logs.mu.Lock()
	all := logs.b.String()
	logs.mu.Unlock()
	if strings.Contains(all, secret) {
		t.Errorf("a credential was logged:\n%s", all)
	}
}

func TestCredentialTenant(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Bearer acme:xyz":        "acme",
		"Bearer  game.1-b_2:xyz": "game.1-b_2",
		"Bearer xyz":             "",
		"Basic acme:xyz":         "",
		"Bearer a b:xyz":         "",
		"":                       "",
		"Bearer :xyz":            "",
		"Bearer acme:x:y":        "acme",
		"Bearer ac%me:xyz":       "",
	} {
		if got := credentialTenant(in); got != want {
			t.Errorf("credentialTenant(%q) = %q, want %q", in, got, want)
		}
	}
}
