package nginx_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// from returns an HTTP client whose connections leave from the loopback
// address src.
func from(t *testing.T, src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// upgrade is the outcome of one WebSocket upgrade through nginx.
type upgrade struct {
	conn       *websocket.Conn // nil when refused
	status     int
	body       errorBody
	retryAfter string
	took       time.Duration
	err        error
}

func dialWS(ctx context.Context, hc *http.Client, url string) upgrade {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	u := upgrade{conn: c, took: time.Since(start), err: err}
	if err != nil && resp != nil {
		u.status, u.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
		decodeErrorBody(resp, &u.body)
	}
	return u
}

// decodeErrorBody reads a JSON error body into e, leaving e empty when
// the body is not one.
func decodeErrorBody(resp *http.Response, e *errorBody) {
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(e)
}

// refusedFast reports whether u is a prompt 429 rate_limited.
func (u upgrade) refusedFast() bool {
	return u.conn == nil && u.status == http.StatusTooManyRequests && u.body.Error.Code == "rate_limited" &&
		u.retryAfter != "" && u.took < 500*time.Millisecond
}

func TestNginxOneAddressFloodingUpgrades(t *testing.T) {
	t.Parallel()
	// A version lets 10 upgrades a second through and parks 40 more; one
	// address may make 2 a second, 5 at once.
	s := startStack(t, versions.Default(), 1, func(c *nginx.Config) {
		c.UpgradeRate, c.UpgradeBurst = 10, 40
		c.PerIPUpgradeRate, c.PerIPUpgradeBurst = 2, 5
	})
	url := s.ngx.WSURL + "/v1/ws"
	flooder, other := from(t, "127.0.0.1"), from(t, "127.0.0.2")

	// 127.0.0.1 floods: 60 upgrades in flight at all times for 3 s.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var mu sync.Mutex
	var passed, refused int
	var wrong []upgrade
	var wg sync.WaitGroup
	for range 60 {
		wg.Go(func() {
			for ctx.Err() == nil {
				u := dialWS(context.Background(), flooder, url)
				mu.Lock()
				switch {
				case u.conn != nil:
					passed++
					u.conn.CloseNow()
				case u.refusedFast():
					refused++
				default:
					wrong = append(wrong, u)
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		})
	}

	// Meanwhile another address's players connect promptly.
	time.Sleep(time.Second)
	for i := range 3 {
		u := dialWS(context.Background(), other, url)
		if u.conn == nil {
			t.Errorf("upgrade %d from 127.0.0.2 during the flood: %d %+v %v", i, u.status, u.body, u.err)
			continue
		}
		u.conn.CloseNow()
		if u.took > time.Second {
			t.Errorf("upgrade %d from 127.0.0.2 during the flood took %v", i, u.took)
		}
		time.Sleep(300 * time.Millisecond)
	}
	wg.Wait()

	// The flood got its share, and the rest was refused at once.
	for i, u := range wrong {
		if i == 3 {
			break
		}
		t.Errorf("flood upgrade: %d %+v Retry-After %q after %v: %v; want a prompt 429 rate_limited", u.status, u.body, u.retryAfter, u.took, u.err)
	}
	if passed < 5 || passed > 5+2*4 || refused == 0 {
		t.Errorf("flood of 3 s: %d upgrades passed, %d refused at once; want 5 at once and 2 a second, the rest refused", passed, refused)
	}
	t.Logf("flood: %d passed, %d refused, %d otherwise", passed, refused, len(wrong))
}

func TestNginxOneAddressHoldingConnections(t *testing.T) {
	t.Parallel()
	s := startStack(t, versions.Default(), 1, func(c *nginx.Config) { c.PerIPConns = 3 })
	url := s.ngx.WSURL + "/v1/ws"
	ctx := context.Background()
	one, two := from(t, "127.0.0.1"), from(t, "127.0.0.2")

	var held []*websocket.Conn
	for i := range 3 {
		u := dialWS(ctx, one, url)
		if u.conn == nil {
			t.Fatalf("connection %d from 127.0.0.1: %d %+v %v", i, u.status, u.body, u.err)
		}
		defer u.conn.CloseNow()
		held = append(held, u.conn)
	}
	if u := dialWS(ctx, one, url); !u.refusedFast() {
		t.Errorf("a fourth connection from 127.0.0.1: %d %+v Retry-After %q after %v: %v; want a prompt 429 rate_limited", u.status, u.body, u.retryAfter, u.took, u.err)
	}
	if u := dialWS(ctx, two, url); u.conn == nil {
		t.Errorf("a connection from 127.0.0.2: %d %+v %v", u.status, u.body, u.err)
	} else {
		u.conn.CloseNow()
	}
	// Once one closes, 127.0.0.1 may connect again.
	held[0].Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		u := dialWS(ctx, one, url)
		if u.conn != nil {
			u.conn.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("127.0.0.1 still refused after closing a connection: %d %+v", u.status, u.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
