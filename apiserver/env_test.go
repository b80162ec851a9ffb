package apiserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/egress"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/tenants"
)

// The tests run the API over the real store (MySQL) and the real bus
// (in-process NATS with JetStream), one of each for the whole package, with
// a log writer draining the bus into the store as in production. Every test
// makes its own tenants, so the tests run in parallel without seeing each
// other. Small wrappers around the store and the bus ([faultyStore],
// [spyBus], [spyRecorder]) let a test make a call fail and see what the API
// published and recorded.

// shared is what every test of the package uses.
var shared struct {
	dsn   string
	nats  string
	store *tenants.Store
	bus   *bus.Bus
}

func TestMain(m *testing.M) {
	os.Exit(testenv.RunShared(func(s testenv.Shared) int {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		quiet := slog.New(slog.DiscardHandler)
		store, err := tenants.Open(ctx, s.MySQL)
		if err != nil {
			slog.Error("open store", "err", err)
			return 1
		}
		defer store.Close()
		b, err := bus.Connect(ctx, bus.Config{URL: s.NATS, Name: "apiserver-tests", Logger: quiet})
		if err != nil {
			slog.Error("connect bus", "err", err)
			return 1
		}
		defer b.Close()
		shared.dsn, shared.nats, shared.store, shared.bus = s.MySQL, s.NATS, store, b
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &bus.LogWriter{Bus: b, Log: store, Events: store, MaxWait: 20 * time.Millisecond, Logger: quiet}
			if err := w.Run(ctx); err != nil && ctx.Err() == nil {
				slog.Error("log writer", "err", err)
			}
		}()
		defer wg.Wait()
		defer cancel()
		return m.Run()
	}))
}

// testEnv is an API server over the shared store and bus, with two
// tenants of its own, A and B.
type testEnv struct {
	t        testing.TB
	handler  http.Handler
	store    *faultyStore
	bus      *spyBus
	events   *spyRecorder
	tenantA  kaiwa.TenantID
	tenantB  kaiwa.TenantID
	keyA     string
	keyB     string
	logs     *syncBuffer
	ownBus   bool
	clock    *testClock
	settings func(*Config)
}

// testClock is a clock a test sets and moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// set makes the clock show t.
func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
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

// envOption adjusts a [testEnv] before its server is made.
type envOption func(*testEnv)

// withConfig adjusts the server's Config.
func withConfig(f func(*Config)) envOption {
	return func(e *testEnv) { e.settings = f }
}

// withOwnStream gives the environment a bus of its own, on streams no log
// writer drains: what it publishes reaches the log only when the test
// writes it there, so the test decides when the log writer "catches up".
func withOwnStream() envOption { return func(e *testEnv) { e.ownBus = true } }

// withClock gives the environment a store and a core of its own whose
// clock is c, so that a test can move time without waiting and without
// moving it for the other tests.
func withClock(c *testClock) envOption { return func(e *testEnv) { e.clock = c } }

// uniqueID returns prefix followed by random hex, for names the tests of
// the package must not share.
func uniqueID(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// newTestEnv builds a server with two fresh tenants.
func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	e := &testEnv{
		t:       t,
		store:   &faultyStore{Store: shared.store},
		tenantA: kaiwa.TenantID(uniqueID("tenantA-")),
		tenantB: kaiwa.TenantID(uniqueID("tenantB-")),
		logs:    &syncBuffer{},
	}
	for _, o := range opts {
		o(e)
	}
	if e.clock != nil {
		own, err := tenants.Open(t.Context(), shared.dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = own.Close() })
		own.SetClock(e.clock.Now)
		e.store.Store = own
	}
	b := shared.bus
	if e.ownBus {
		p := uniqueID("t")
		own, err := bus.Connect(t.Context(), bus.Config{
			URL: shared.nats, Name: "apiserver-test-" + p, Prefix: p,
			Stream: strings.ToUpper(p) + "_MSGS", EventStream: strings.ToUpper(p) + "_EVENTS",
			EventBatchStream: strings.ToUpper(p) + "_EVENT_BATCHES",
			Logger:           slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = own.Close() })
		b = own
	}
	e.bus = &spyBus{b: b}
	e.events = &spyRecorder{to: b}
	var err error
	if e.keyA, err = shared.store.CreateTenant(t.Context(), e.tenantA, "Game A"); err != nil {
		t.Fatal(err)
	}
	if e.keyB, err = shared.store.CreateTenant(t.Context(), e.tenantB, "Game B"); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	if e.clock != nil {
		cfg.Core.Now = e.clock.Now
	}
	cfg.Version = "v1"
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	if e.settings != nil {
		e.settings(&cfg)
	}
	e.handler = NewServer(cfg)
	return e
}

// config returns a Config of the environment's dependencies, the core
// among them.
func (e *testEnv) config() Config {
	return Config{
		Core: &kaiwa.Core{
			Tenants: e.store, Tokens: e.store, Channels: e.store, Log: e.store, NG: e.store,
			Sanctions: e.store, Signing: e.store, Bus: e.bus, Events: e.events, Player: e.store,
			Webhooks: e.store, URLs: egress.Policy{AllowPrivate: true},
		},
		Signing:   e.store,
		Webhooks:  e.store,
		Presence:  shared.bus,
		Tenants:   e.store,
		Channels:  e.store,
		Log:       e.store,
		NG:        e.store,
		Sanctions: e.store,
		Events:    e.store,
		Stats:     fakeStats{secret: e.tenantA},
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

// setSettings replaces a tenant's settings in the store.
func (e *testEnv) setSettings(tenant kaiwa.TenantID, s kaiwa.Settings) {
	e.t.Helper()
	if err := shared.store.SetTenantSettings(context.Background(), tenant, s); err != nil {
		e.t.Fatal(err)
	}
}

// channels returns the names of a tenant's channels in the store.
func (e *testEnv) channels(tenant kaiwa.TenantID) []string {
	e.t.Helper()
	list, err := shared.store.Channels(context.Background(), tenant, "")
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	return names
}

// logMessage publishes a user's chat message as a UA would, and writes it
// to the log as the log writer would (a writer that gets to it later
// skips it). The message keeps ts, so tests can query by time.
func (e *testEnv) logMessage(tenant kaiwa.TenantID, ch, from, text string, ts int64) kaiwa.Message {
	e.t.Helper()
	m := e.streamOnly(tenant, ch, from, text, ts)
	if err := shared.store.AppendMessages(context.Background(), []kaiwa.Message{m}); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// streamOnly publishes a user's chat message that the log writer has not
// written yet. In an environment [withOwnStream], it never does.
func (e *testEnv) streamOnly(tenant kaiwa.TenantID, ch, from, text string, ts int64) kaiwa.Message {
	e.t.Helper()
	m, err := e.bus.b.Publish(context.Background(), kaiwa.Message{
		Tenant: tenant, Channel: ch, From: from, Name: strings.ToUpper(from), Text: text, TS: ts,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// dropFromStream removes a message from the stream, as its age limit would.
func (e *testEnv) dropFromStream(m kaiwa.Message) {
	e.t.Helper()
	if err := e.bus.b.DeleteMessage(context.Background(), m.Tenant, m.Channel, m.ID); err != nil {
		e.t.Fatal(err)
	}
}

// inStream reports whether the stream holds the message.
func (e *testEnv) inStream(m kaiwa.Message) bool {
	e.t.Helper()
	msgs, err := e.bus.b.History(context.Background(), m.Tenant, m.Channel, "", 100)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range msgs {
		if h.ID == m.ID {
			return true
		}
	}
	return false
}

// logged returns the tenant's messages in the log, oldest first.
func (e *testEnv) logged(tenant kaiwa.TenantID) []kaiwa.Message {
	e.t.Helper()
	page, err := shared.store.Messages(context.Background(), tenant, kaiwa.MessageQuery{Limit: 500})
	if err != nil {
		e.t.Fatal(err)
	}
	return page.Messages
}

// waitLogged waits until the log writer has written the message of id.
func (e *testEnv) waitLogged(tenant kaiwa.TenantID, id string) {
	e.t.Helper()
	testenv.Eventually(e.t, "message "+id+" is in the log", 5*time.Second, func() bool {
		for _, m := range e.logged(tenant) {
			if m.ID == id {
				return true
			}
		}
		return false
	})
}
