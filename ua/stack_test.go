package ua_test

import (
	"context"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/internal/teststack"
	"github.com/kaiwa-chat/kaiwa/tenants"
	"github.com/kaiwa-chat/kaiwa/ua"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// stack is the backend of teststack with the names the UA tests use.
type stack struct {
	*teststack.Stack
	t      *testing.T
	store  *tenants.Store
	api    *bus.Bus
	tenant kaiwa.TenantID
	nats   string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ts := teststack.New(t)
	return &stack{Stack: ts, t: t, store: ts.Store, api: ts.API, tenant: ts.Tenant, nats: ts.NATS}
}

func (s *stack) connect(name string) *bus.Bus { return s.Connect(name) }

// proxiedBus opens a bus connection, as a UA process would, through a
// proxy in front of the stack's NATS that the test can cut or freeze.
func (s *stack) proxiedBus() (*testenv.Proxy, *bus.Bus) {
	s.t.Helper()
	proxy := testenv.NewProxy(s.t, s.nats[len("nats://"):])
	return proxy, s.ConnectTo("nats://"+proxy.Addr(), "ua")
}

// startUA runs a v1 UA server (its own bus connection, as its own process
// would) and returns its ws:// URL.
func (s *stack) startUA(tune func(*ua.Config)) (string, *ua.Server) {
	s.t.Helper()
	return s.UA("v1", tune)
}

// startUAWith runs a UA server of version v on bus connection b and
// returns its ws:// URL.
func (s *stack) startUAWith(b *bus.Bus, v versions.Version, tune func(*ua.Config)) (string, *ua.Server) {
	s.t.Helper()
	return s.UAOn(b, v.Name, tune)
}

func (s *stack) channel(name string, kind kaiwa.ChannelKind) { s.Channel(name, kind) }

func (s *stack) token(user string, join, publish []string) string {
	return s.Token(user, join, publish)
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

// none asserts that c has received no event with op: whatever the server
// sent before answering a ping has arrived by then.
func none(t *testing.T, c *client.Conn, op string) {
	t.Helper()
	if err := c.Ping(ctx5(t)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				return
			}
			if ev.Op == op {
				t.Fatalf("unexpected %q: %s", op, ev.Raw)
			}
		default:
			return
		}
	}
}
