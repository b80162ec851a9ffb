// Package teststack runs Kaiwa's backend in the test process, for tests of
// the UA and of clients: MySQL (a database of the test's own), NATS (in
// process), the directory served over the bus from the store as an API
// process serves it, a tenant, and UA servers on loopback HTTP.
package teststack

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/egress"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/signing"
	"github.com/kaiwa-chat/kaiwa/tenants"
	"github.com/kaiwa-chat/kaiwa/tenants/ngword"
	"github.com/kaiwa-chat/kaiwa/ua"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// Stack is a backend for one test. Its parts stop when the test ends.
type Stack struct {
	T      testing.TB
	Store  *tenants.Store
	NATS   string   // the NATS server's URL
	API    *bus.Bus // the API tier's bus connection (publishes, controls)
	Tenant kaiwa.TenantID
}

// New starts a stack with the tenant "acme".
func New(t testing.TB) *Stack {
	t.Helper()
	ctx := context.Background()
	store, err := tenants.Open(ctx, testenv.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s := &Stack{T: t, Store: store, NATS: testenv.NATS(t), Tenant: "acme"}
	s.API = s.Connect("api")
	mod := kaiwa.Moderator{Store: store, Bus: s.API, Events: s.API}
	sub, err := s.API.ServeDirectory(store, mod, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	core := &kaiwa.Core{Tenants: store, Channels: store, Log: store, Bus: s.API, Events: s.API, Stream: s.API, Player: store}
	psub, err := s.API.ServePlayers(core.Players(kaiwa.ActorUA), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { psub.Unsubscribe() })
	if _, err := store.CreateTenant(ctx, s.Tenant, "Acme"); err != nil {
		t.Fatal(err)
	}
	return s
}

// Connect opens a bus connection to the stack's NATS, as a process would.
func (s *Stack) Connect(name string) *bus.Bus {
	s.T.Helper()
	return s.ConnectTo(s.NATS, name)
}

// ConnectTo opens a bus connection to url (a proxy in front of the
// stack's NATS, for instance).
func (s *Stack) ConnectTo(url, name string) *bus.Bus {
	s.T.Helper()
	b, err := bus.Connect(context.Background(), bus.Config{URL: url, Name: name})
	if err != nil {
		s.T.Fatal(err)
	}
	s.T.Cleanup(func() { b.Close() })
	return b
}

// UA runs a UA server of the named version ("v1", "v2") on a bus
// connection of its own and returns its ws:// URL. tune, when not nil,
// adjusts its config.
func (s *Stack) UA(version string, tune func(*ua.Config)) (string, *ua.Server) {
	s.T.Helper()
	return s.UAOn(s.Connect("ua"), version, tune)
}

// UAOn runs a UA server of the named version on bus connection b.
func (s *Stack) UAOn(b *bus.Bus, version string, tune func(*ua.Config)) (string, *ua.Server) {
	s.T.Helper()
	v, ok := versions.Default().Get(version)
	if !ok {
		s.T.Fatalf("teststack: no version %q", version)
	}
	dir := b.Directory()
	signed, sub, err := signing.Attach(dir, b, nil)
	if err != nil {
		s.T.Fatal(err)
	}
	s.T.Cleanup(func() { sub.Unsubscribe() })
	cfg := ua.Config{
		Version: v, Directory: signed, Moderation: dir, Bus: b, Recorder: b, DrainWindow: 100 * time.Millisecond, Presence: b,
		HookClient: egress.Policy{AllowPrivate: true}.Client(5 * time.Second), Limits: b,
		Players: b.Players(), Stream: b,
		CompileNG: func(l kaiwa.NGList) (ua.Matcher, error) { return ngword.Compile(l.Words, l.Allow) },
	}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := ua.New(cfg)
	if err != nil {
		s.T.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	s.T.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/" + v.Name + "/ws", srv
}

// Channel creates (or updates) a channel of the stack's tenant.
func (s *Stack) Channel(name string, kind kaiwa.ChannelKind) {
	s.T.Helper()
	if _, err := s.Store.PutChannel(context.Background(), kaiwa.Channel{Tenant: s.Tenant, Name: name, Kind: kind}); err != nil {
		s.T.Fatal(err)
	}
}

// Token issues a token for user of the stack's tenant, valid for an hour,
// with the given join and publish prefixes.
func (s *Stack) Token(user string, join, publish []string) string {
	s.T.Helper()
	tok, err := s.Store.IssueToken(context.Background(), s.Tenant, kaiwa.TokenRequest{
		User: user, Name: strings.ToUpper(user[:1]) + user[1:], TTL: time.Hour, Join: join, Publish: publish,
	})
	if err != nil {
		s.T.Fatal(err)
	}
	return tok.Token
}

// Publish puts a system message on channel ch of the stack's tenant, as
// the API does, and returns it as stored.
func (s *Stack) Publish(ch, text string) kaiwa.Message {
	s.T.Helper()
	m, err := s.API.Publish(context.Background(), kaiwa.Message{Tenant: s.Tenant, Channel: ch, Text: text, System: true})
	if err != nil {
		s.T.Fatal(err)
	}
	return m
}
