package ua_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/tenants"
	"github.com/kaiwa-chat/kaiwa/ua"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// stack is a real backend for UA tests: MySQL, NATS, and the API tier's
// directory served over the bus.
type stack struct {
	t      *testing.T
	store  *tenants.Store
	nats   string
	api    *bus.Bus
	tenant kaiwa.TenantID
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	store, err := tenants.Open(ctx, testenv.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s := &stack{t: t, store: store, nats: testenv.NATS(t), tenant: "acme"}
	s.api = s.connect("api")
	mod := kaiwa.Moderator{Store: store, Bus: s.api, Events: s.api}
	sub, err := s.api.ServeDirectory(store, mod, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if _, err := store.CreateTenant(ctx, s.tenant, "Acme"); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stack) connect(name string) *bus.Bus {
	s.t.Helper()
	b, err := bus.Connect(context.Background(), bus.Config{URL: s.nats, Name: name})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { b.Close() })
	return b
}

// startUA runs a v1 UA server (its own bus connection, as its own process
// would) and returns its ws:// URL.
func (s *stack) startUA(tune func(*ua.Config)) (string, *ua.Server) {
	s.t.Helper()
	return s.startUAWith(s.connect("ua"), versions.Default().All()[0], tune)
}

// startUAWith runs a UA server of version v on bus connection b and
// returns its ws:// URL.
func (s *stack) startUAWith(b *bus.Bus, v versions.Version, tune func(*ua.Config)) (string, *ua.Server) {
	s.t.Helper()
	dir := b.Directory()
	cfg := ua.Config{Version: v, Directory: dir, Moderation: dir, Bus: b, Recorder: b, CompileNG: compileNG, DrainWindow: 100 * time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := ua.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/" + v.Name + "/ws", srv
}

func (s *stack) channel(name string, kind kaiwa.ChannelKind) {
	s.t.Helper()
	if _, err := s.store.PutChannel(context.Background(), kaiwa.Channel{Tenant: s.tenant, Name: name, Kind: kind}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) token(user string, join, publish []string) string {
	s.t.Helper()
	tok, err := s.store.IssueToken(context.Background(), s.tenant, kaiwa.TokenRequest{
		User: user, Name: strings.ToUpper(user[:1]) + user[1:], TTL: time.Hour, Join: join, Publish: publish,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return tok.Token
}

func (s *stack) dial(url, user string) *client.Conn {
	s.t.Helper()
	return dialToken(s.t, url, s.token(user, []string{"*"}, []string{"*"}))
}

func dialToken(t *testing.T, url, token string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Token: token})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// none asserts that c receives no event with op within a short time.
func none(t *testing.T, c *client.Conn, op string) {
	t.Helper()
	timeout := time.After(200 * time.Millisecond)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				return
			}
			if ev.Op == op {
				t.Fatalf("unexpected %q: %s", op, ev.Raw)
			}
		case <-timeout:
			return
		}
	}
}
