package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/devstack"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/tenants"
)

// kaiwaBin is the kaiwa binary the stack runs, built by TestMain.
var kaiwaBin string

func TestMain(m *testing.M) { os.Exit(testenv.RunWithKaiwa(m, &kaiwaBin)) }

// stack is the real stack the scenarios are played against.
type stack struct {
	st    *devstack.Stack
	store *tenants.Store
	out   *bytes.Buffer
}

// startStack starts the dev stack (its own database on the test MySQL,
// NATS in process, two UAs per version, nginx) on free ports.
func startStack(t *testing.T) *stack {
	t.Helper()
	dsn := testenv.MySQL(t)
	natsURL := testenv.NATS(t)
	out := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Config{
		Exe:         kaiwaBin,
		VarDir:      t.TempDir(),
		MySQLDSN:    dsn,
		NATSURL:     natsURL,
		HTTPListen:  testenv.FreeAddr(t),
		HTTPSListen: testenv.FreeAddr(t),
		DrainWindow: 500 * time.Millisecond,
		MinBackoff:  100 * time.Millisecond,
		MaxBackoff:  time.Second,
		Nginx:       func(c *nginx.Config) { c.WorkerConnections = 4096 },
		Quiet:       true,
		Stdout:      out,
		Stderr:      out,
		Logger:      slog.New(slog.NewTextHandler(out, nil)),
	})
	if err != nil {
		t.Fatalf("start the stack: %v\n%s", err, out.String())
	}
	t.Cleanup(st.Stop)
	store, err := tenants.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &stack{st: st, store: store, out: &out.buf}
}

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

// controlServer is the control protocol of README.md for one runner: the
// scenario's tenant and its key, and the clients' proxies.
type controlServer struct {
	t  *testing.T
	s  *stack
	hc *http.Client

	mu       sync.Mutex
	tenant   kaiwa.TenantID
	key      string
	proxies  map[string]*testenv.Proxy
	nTenants int
}

// newControl starts a control server for one runner and returns its URL.
func newControl(t *testing.T, s *stack) string {
	t.Helper()
	c := &controlServer{t: t, s: s, hc: &http.Client{Timeout: 10 * time.Second}, proxies: map[string]*testenv.Proxy{}}
	mux := http.NewServeMux()
	for path, h := range map[string]func(context.Context, json.RawMessage) (any, error){
		"/begin": c.begin, "/token": c.token, "/connect-url": c.connectURL,
		"/proxy/cut": c.proxyCut, "/proxy/restore": c.proxyRestore, "/proxy/delay": c.proxyDelay,
		"/system": c.system, "/system-many": c.systemMany, "/revoke": c.revoke,
		"/kill-ua": c.killUA, "/drain-ua": c.drainUA,
	} {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			out, err := h(r.Context(), body)
			w.Header().Set("Content-Type", "application/json")
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
				return
			}
			if out == nil {
				out = struct{}{}
			}
			_ = json.NewEncoder(w).Encode(out)
		})
	}
	srv := httptest.NewServer(allowCORS(mux))
	t.Cleanup(srv.Close)
	return srv.URL
}

// allowCORS lets a runner in a browser page of another origin call the
// control server: every answer allows any origin, and a preflight is
// answered at once.
func allowCORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// api calls the scenario tenant's API through nginx's plain listener.
func (c *controlServer) api(ctx context.Context, method, path string, body any, out any) error {
	c.mu.Lock()
	key := c.key
	c.mu.Unlock()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.s.st.HTTPURL+"/v1/api"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (c *controlServer) begin(ctx context.Context, body json.RawMessage) (any, error) {
	var req struct {
		Setup struct {
			Channels map[string]string   `json:"channels"`
			Members  map[string][]string `json:"members"`
		} `json:"setup"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nTenants++
	tenant := kaiwa.TenantID(fmt.Sprintf("conf%d-%s", c.nTenants, randomID(4)))
	c.mu.Unlock()
	key, err := c.s.store.CreateTenant(ctx, tenant, string(tenant))
	if err != nil {
		return nil, err
	}
	// A runner is not slowed by the default rate limit.
	if err := c.s.store.SetTenantSettings(ctx, tenant, kaiwa.Settings{RateOps: 200, RateBurst: 400, APIRate: 5000, APIBurst: 5000}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tenant, c.key = tenant, key
	c.mu.Unlock()
	for ch, kind := range req.Setup.Channels {
		if err := c.api(ctx, "PUT", "/channels/"+url.PathEscape(ch), map[string]string{"kind": kind}, nil); err != nil {
			return nil, err
		}
	}
	for ch, users := range req.Setup.Members {
		for _, u := range users {
			if err := c.api(ctx, "PUT", "/channels/"+url.PathEscape(ch)+"/members/"+url.PathEscape(u), nil, nil); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(strings.TrimRight(base64.RawURLEncoding.EncodeToString(b), "-_"))
}

func (c *controlServer) token(ctx context.Context, body json.RawMessage) (any, error) {
	var req struct {
		User    string   `json:"user"`
		Join    []string `json:"join"`
		Publish []string `json:"publish"`
		TTL     int      `json:"ttl_seconds"`
		Forged  bool     `json:"forged"`
		Expired bool     `json:"expired"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	if req.Forged {
		c.mu.Lock()
		defer c.mu.Unlock()
		return map[string]string{"token": string(c.tenant) + ":" + randomID(24)}, nil
	}
	if req.TTL <= 0 {
		req.TTL = 600
	}
	if req.Expired {
		req.TTL = 1
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := c.api(ctx, "POST", "/tokens", map[string]any{
		"user": req.User, "name": req.User, "ttl_seconds": req.TTL, "join": req.Join, "publish": req.Publish,
	}, &out); err != nil {
		return nil, err
	}
	if req.Expired {
		// expires_at is given to the second, rounded down.
		time.Sleep(time.Until(out.ExpiresAt.Add(time.Second)) + 100*time.Millisecond)
	}
	return map[string]string{"token": out.Token}, nil
}

func (c *controlServer) connectURL(ctx context.Context, body json.RawMessage) (any, error) {
	var req struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Version == "" {
		return nil, fmt.Errorf("a version is needed")
	}
	p := testenv.NewProxy(c.t, strings.TrimPrefix(c.s.st.HTTPURL, "http://"))
	c.mu.Lock()
	id := fmt.Sprint("p", len(c.proxies)+1)
	c.proxies[id] = p
	c.mu.Unlock()
	return map[string]string{"url": "ws://" + p.Addr() + "/" + req.Version + "/ws", "proxy": id}, nil
}

func (c *controlServer) proxy(body json.RawMessage) (*testenv.Proxy, int, error) {
	var req struct {
		Proxy string `json:"proxy"`
		MS    int    `json:"ms"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.proxies[req.Proxy]
	if p == nil {
		return nil, 0, fmt.Errorf("no proxy %q", req.Proxy)
	}
	return p, req.MS, nil
}

func (c *controlServer) proxyCut(_ context.Context, body json.RawMessage) (any, error) {
	p, _, err := c.proxy(body)
	if err == nil {
		p.Cut()
	}
	return nil, err
}

func (c *controlServer) proxyRestore(_ context.Context, body json.RawMessage) (any, error) {
	p, _, err := c.proxy(body)
	if err == nil {
		p.Restore()
	}
	return nil, err
}

func (c *controlServer) proxyDelay(_ context.Context, body json.RawMessage) (any, error) {
	p, ms, err := c.proxy(body)
	if err == nil {
		p.SetDelay(time.Duration(ms) * time.Millisecond)
	}
	return nil, err
}

func (c *controlServer) system(ctx context.Context, body json.RawMessage) (any, error) {
	var req struct {
		Ch   string `json:"ch"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	var out map[string]any
	err := c.api(ctx, "POST", "/channels/"+url.PathEscape(req.Ch)+"/messages", map[string]string{"text": req.Text}, &out)
	return out, err
}

func (c *controlServer) systemMany(ctx context.Context, body json.RawMessage) (any, error) {
	var req struct {
		Ch     string `json:"ch"`
		Prefix string `json:"prefix"`
		Count  int    `json:"count"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	for i := range req.Count {
		text := fmt.Sprint(req.Prefix, i)
		cid := fmt.Sprint("sys-", text)
		if err := c.api(ctx, "POST", "/channels/"+url.PathEscape(req.Ch)+"/messages", map[string]string{"text": text, "cid": cid}, nil); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (c *controlServer) revoke(ctx context.Context, body json.RawMessage) (any, error) {
	var req struct {
		User string `json:"user"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	return nil, c.api(ctx, "DELETE", "/users/"+url.PathEscape(req.User)+"/tokens", nil, nil)
}

func (c *controlServer) uas(body json.RawMessage) ([]*devstack.Process, error) {
	var req struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	ps := c.s.st.UAs(req.Version)
	if len(ps) == 0 {
		return nil, fmt.Errorf("no UA of version %q", req.Version)
	}
	return ps, nil
}

func (c *controlServer) killUA(_ context.Context, body json.RawMessage) (any, error) {
	ps, err := c.uas(body)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if err := p.Kill(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (c *controlServer) drainUA(ctx context.Context, body json.RawMessage) (any, error) {
	ps, err := c.uas(body)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range ps {
		p.Restart()
		names = append(names, p.Name())
		if err := c.s.st.WaitReady(ctx, p.Name()); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// scenarios reads scenarios.json.
func scenarios(t *testing.T) []scenario {
	t.Helper()
	b, err := os.ReadFile("scenarios.json")
	if err != nil {
		t.Fatal(err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("scenarios.json: %v", err)
	}
	return f.Scenarios
}

// only is KAIWA_CONFORMANCE_ONLY: a regular expression of the scenario
// names to play (all when empty).
func only(t *testing.T) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(os.Getenv("KAIWA_CONFORMANCE_ONLY"))
	if err != nil {
		t.Fatalf("KAIWA_CONFORMANCE_ONLY: %v", err)
	}
	return re
}

// TestConformance plays every scenario of scenarios.json with every
// client against one real stack: the Go client here, the TypeScript and
// C# SDKs through their runners. The runners take turns, since some
// scenarios kill or drain the UAs.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suite starts a whole stack")
	}
	s := startStack(t)
	re := only(t)
	path, err := filepath.Abs("scenarios.json")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("go", func(t *testing.T) {
		ctl := control{base: newControl(t, s), hc: &http.Client{Timeout: 30 * time.Second}}
		for _, sc := range scenarios(t) {
			if !re.MatchString(sc.Name) {
				continue
			}
			for _, v := range sc.Versions {
				t.Run(v+"/"+sc.Name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					if err := play(ctx, ctl, sc, v); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	})
	for _, r := range runners {
		t.Run(r.name, func(t *testing.T) {
			r.run(t, newControl(t, s), path)
		})
	}
	if t.Failed() {
		t.Logf("the stack's output:\n%s", s.out.String())
	}
}

// runners are the SDKs' own runners, started as processes.
var runners []struct {
	name string
	run  func(t *testing.T, control, scenarios string)
}
