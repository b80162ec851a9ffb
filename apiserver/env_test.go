package apiserver

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

// testEnv is an API server over in-memory stores holding two tenants, A
// and B.
type testEnv struct {
	t         testing.TB
	handler   http.Handler
	tenants   *fakeTenants
	tokens    *fakeTokens
	channels  *fakeChannels
	log       *fakeLog
	bus       *fakeBus
	ng        *fakeNG
	sanctions *fakeSanctions
	events    *fakeEvents
	keyA      string
	keyB      string
	logs      *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for concurrent writes, for the logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestEnv builds a server; configure, when given, adjusts its Config.
func newTestEnv(t testing.TB, configure ...func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{
		t:         t,
		tenants:   newFakeTenants(),
		tokens:    newFakeTokens(),
		channels:  newFakeChannels(),
		log:       &fakeLog{},
		sanctions: newFakeSanctions(),
		events:    &fakeEvents{},
		logs:      &syncBuffer{},
	}
	e.bus = &fakeBus{log: e.log}
	e.ng = newFakeNG(e.tenants)
	var err error
	if e.keyA, err = e.tenants.CreateTenant(t.Context(), "tenantA", "Game A"); err != nil {
		t.Fatal(err)
	}
	if e.keyB, err = e.tenants.CreateTenant(t.Context(), "tenantB", "Game B"); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Version = "v1"
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	for _, f := range configure {
		f(&cfg)
	}
	e.handler = NewServer(cfg)
	return e
}

// config returns a Config of the environment's dependencies, the real
// [kaiwa.Moderator] among them.
func (e *testEnv) config() Config {
	return Config{
		Tenants:    e.tenants,
		Tokens:     e.tokens,
		Channels:   e.channels,
		Log:        e.log,
		Bus:        e.bus,
		NG:         e.ng,
		Moderation: kaiwa.Moderator{Store: e.sanctions, Bus: e.bus, Events: e.events},
		Sanctions:  e.sanctions,
		Events:     e.events,
		Recorder:   e.events,
	}
}

// do serves one request. target is the raw request target, so escapes in
// it reach the server as a client would send them.
func (e *testEnv) do(method, target, key, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

// wantStatus fails the test unless the response has the status.
func wantStatus(t testing.TB, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
}

// wantError fails the test unless the response is an error of the status
// and code in the documented shape, with a message.
func wantError(t testing.TB, rec *httptest.ResponseRecorder, status int, code kaiwa.Code) string {
	t.Helper()
	wantStatus(t, rec, status)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON", ct)
	}
	var body map[string]map[string]any
	dec := json.NewDecoder(rec.Body)
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("error body: %v", err)
	}
	if len(body) != 1 || len(body["error"]) != 2 {
		t.Fatalf("error body %v, want {error:{code,message}}", body)
	}
	if got := body["error"]["code"]; got != string(code) {
		t.Fatalf("code %v, want %s (message %v)", got, code, body["error"]["message"])
	}
	msg, _ := body["error"]["message"].(string)
	if msg == "" {
		t.Fatalf("error %s has no message", code)
	}
	return msg
}

// decode decodes a JSON response body into v.
func decode(t testing.TB, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
}

// putChannel creates a channel for the tenant of key.
func (e *testEnv) putChannel(key, ch, kind string) {
	e.t.Helper()
	rec := e.do("PUT", "/v1/api/channels/"+ch, key, `{"kind":"`+kind+`","title":"T"}`)
	if rec.Code != http.StatusCreated && rec.Code != http.StatusOK {
		e.t.Fatalf("put channel %s: %d %s", ch, rec.Code, rec.Body)
	}
}
