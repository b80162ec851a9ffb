package nginx_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// crashableUA is a WebSocket echo server on a unix socket that a test can
// crash, the way a UA process dies (its sessions end and the socket file
// stays behind, refusing connections), and start again on the same path.
type crashableUA struct {
	t    testing.TB
	path string
	name string

	mu     sync.Mutex
	srv    *http.Server
	cancel context.CancelFunc
}

func newCrashableUA(t testing.TB, path, name string) *crashableUA {
	u := &crashableUA{t: t, path: path, name: name}
	u.start()
	t.Cleanup(u.crash)
	return u
}

// start listens on the socket again, removing the file a crash left.
func (u *crashableUA) start() {
	u.t.Helper()
	if err := os.Remove(u.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		u.t.Fatal(err)
	}
	l, err := net.Listen("unix", u.path)
	if err != nil {
		u.t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	ctx, cancel := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           wsBackend(u.name),
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go srv.Serve(l)
	u.mu.Lock()
	u.srv, u.cancel = srv, cancel
	u.mu.Unlock()
}

// crash stops listening and ends every session; the socket file stays.
func (u *crashableUA) crash() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.srv == nil {
		return
	}
	u.srv.Close()
	u.cancel()
	u.srv, u.cancel = nil, nil
}

// reconnecter is a client that, like the SDKs, reconnects after a short
// jittered pause until it holds a session again.
type reconnecter struct {
	s      *stack
	url    string
	conn   *websocket.Conn
	backAt time.Time
	// refusals are the upgrades nginx answered with an error; other are
	// the attempts that failed otherwise.
	refusals []upgrade
	other    []error
}

// run reconnects until it holds a session or ctx ends; it keeps the session
// open (a WebSocket request only completes when its session ends).
func (r *reconnecter) run(ctx context.Context) {
	for ctx.Err() == nil {
		u := dialWS(ctx, r.s.client, r.url)
		switch {
		case u.conn != nil:
			r.conn, r.backAt = u.conn, time.Now()
			return
		case u.status != 0:
			r.refusals = append(r.refusals, u)
		case ctx.Err() == nil:
			r.other = append(r.other, u.err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50*time.Millisecond + rand.N(100*time.Millisecond)):
		}
	}
}

func TestNginxUAsBackAfterEveryUAFailed(t *testing.T) {
	t.Parallel()
	const n = 60
	dir := socketDir(t)
	uas := []*crashableUA{
		newCrashableUA(t, nginx.UASocket(dir, "v1", 0), "ua-v1-0"),
		newCrashableUA(t, nginx.UASocket(dir, "v1", 1), "ua-v1-1"),
	}
	p := testenv.Nginx(t, nginx.Config{
		Registry: versions.Default(),
		Sockets:  nginx.DirSockets(dir, 2),
		// Reconnects are neither parked nor limited per address (the
		// clients share one): this test is about the sockets.
		UpgradeRate: 100000, UpgradeBurst: 100000, PerIPUpgradeRate: -1,
	})
	s := &stack{ngx: p, client: &http.Client{Timeout: 10 * time.Second}}
	url := p.WSURL + "/v1/ws"

	// n clients hold sessions on both UAs.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients := make([]*reconnecter, n)
	var wg sync.WaitGroup
	for i := range clients {
		clients[i] = &reconnecter{s: s, url: url}
		wg.Go(func() { clients[i].run(ctx) })
	}
	wg.Wait()
	for i, c := range clients {
		if c.conn == nil {
			t.Fatalf("client %d did not connect: %v %v", i, c.refusals, c.other)
		}
	}

	// Both UAs die; their clients notice and keep reconnecting while the
	// UAs are down for a second.
	for _, u := range uas {
		u.crash()
	}
	for i, c := range clients {
		if _, _, err := c.conn.Read(ctx); err == nil {
			t.Fatalf("client %d: session outlived its UA", i)
		}
		c.conn = nil
		wg.Go(func() { clients[i].run(ctx) })
	}
	time.Sleep(time.Second)
	for _, u := range uas {
		u.start()
	}
	back := time.Now()
	const within = 5 * time.Second
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(within + 2*time.Second):
		cancel()
		<-done
	}

	var slowest time.Duration
	refused := 0
	for i, c := range clients {
		refused += len(c.refusals)
		if c.conn == nil {
			t.Errorf("client %d not back %v after the UAs listened again", i, within+2*time.Second)
			continue
		}
		defer c.conn.CloseNow()
		slowest = max(slowest, c.backAt.Sub(back))
		for _, err := range c.other {
			t.Errorf("client %d: %v", i, err)
		}
		// While every UA was down, each attempt was refused at once, with
		// the JSON error shape.
		for _, u := range c.refusals {
			if u.status != http.StatusServiceUnavailable || u.body.Error.Code != "unavailable" || u.took > time.Second {
				t.Errorf("client %d: refused with %d %+v after %v, want a prompt 503 unavailable", i, u.status, u.body, u.took)
				break
			}
		}
	}
	if refused < n {
		t.Errorf("%d upgrades refused while every UA was down, want at least one per client", refused)
	}
	if slowest > within {
		t.Errorf("the last client was back %v after the UAs listened again, want at most %v", slowest, within)
	}
	t.Logf("%d upgrades refused while the UAs were down; all %d clients back within %v", refused, n, slowest)
}
