package nginx_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// socketDir returns a short temporary directory for unix sockets, whose
// paths must stay under 108 bytes.
func socketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// listenUnix serves h on a unix socket at path until the test ends.
func listenUnix(t testing.TB, path string, h http.Handler) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// seen is what a backend reports about a request it received.
type seen struct {
	Backend   string `json:"backend"`
	URI       string `json:"uri"`
	Auth      string `json:"auth"`
	RealIP    string `json:"real_ip"`
	Forwarded string `json:"forwarded_for"`
	RequestID string `json:"request_id"`
	Proto     string `json:"proto"`
}

// apiBackend answers every request with what it saw.
func apiBackend(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{
			Backend: name, URI: r.RequestURI, Auth: r.Header.Get("Authorization"),
			RealIP: r.Header.Get("X-Real-IP"), Forwarded: r.Header.Get("X-Forwarded-For"),
			RequestID: r.Header.Get("X-Request-ID"), Proto: r.Header.Get("X-Forwarded-Proto"),
		})
	})
}

// wsBackend accepts WebSockets, names itself in the X-Backend response
// header, and echoes every message prefixed with its name.
func wsBackend(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte(name+":"), msg...)); err != nil {
				return
			}
		}
	})
}

// stack is nginx in front of real backends on unix sockets: UA echo
// servers and an API server for each live version of the registry.
type stack struct {
	ngx    *testenv.NginxProc
	client *http.Client // trusts nginx's certificate
}

func startStack(t *testing.T, reg *versions.Registry, uaPerVersion int, tune func(*nginx.Config)) *stack {
	t.Helper()
	dir := socketDir(t)
	for _, v := range reg.Live() {
		for i := range uaPerVersion {
			listenUnix(t, nginx.UASocket(dir, v.Name, i), wsBackend(fmt.Sprintf("ua-%s-%d", v.Name, i)))
		}
		listenUnix(t, nginx.APISocket(dir, v.Name), apiBackend("api-"+v.Name))
	}
	cfg := nginx.Config{Registry: reg, Sockets: nginx.DirSockets(dir, uaPerVersion)}
	if tune != nil {
		tune(&cfg)
	}
	p := testenv.Nginx(t, cfg)
	pem, err := os.ReadFile(p.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	return &stack{ngx: p, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (s *stack) base(tls bool) (httpBase, wsBase string) {
	if tls {
		return s.ngx.HTTPSURL, s.ngx.WSSURL
	}
	return s.ngx.HTTPURL, s.ngx.WSURL
}

// dial opens a WebSocket through nginx and returns it with the name of the
// backend that accepted it.
func (s *stack) dial(ctx context.Context, url string, h http.Header) (*websocket.Conn, string, error) {
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: s.client, HTTPHeader: h})
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(resp.Body)
			return nil, "", fmt.Errorf("dial %s: HTTP %d %s: %w", url, resp.StatusCode, bytes.TrimSpace(body), err)
		}
		return nil, "", err
	}
	return c, resp.Header.Get("X-Backend"), nil
}

// errorBody is the JSON error shape nginx answers with.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *stack) getError(t *testing.T, url string) (int, errorBody) {
	t.Helper()
	resp, err := s.client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e errorBody
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("GET %s: %d, body is not JSON: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode, e
}

func twoVersions() *versions.Registry {
	return versions.NewRegistry(
		versions.Version{Name: "v0", Status: versions.Retired},
		versions.Version{Name: "v1", Status: versions.Deprecated, Sunset: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), Codec: versions.V1{}},
		versions.Version{Name: "v2", Status: versions.Supported, Codec: versions.V1{}},
	)
}

func TestNginxRoutes(t *testing.T) {
	t.Parallel()
	s := startStack(t, twoVersions(), 2, nil)
	const secret = "Bearer sekrit-token-4f9a"

	for _, useTLS := range []bool{false, true} {
		httpBase, wsBase := s.base(useTLS)
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			// WebSocket upgrade reaches the version's UA sockets.
			for _, v := range []string{"v1", "v2"} {
				c, backend, err := s.dial(ctx, wsBase+"/"+v+"/ws", http.Header{"Authorization": {secret}})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(backend, "ua-"+v+"-") {
					t.Errorf("/%s/ws reached %q", v, backend)
				}
				if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
					t.Fatal(err)
				}
				_, msg, err := c.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if want := backend + ":hello"; string(msg) != want {
					t.Errorf("echo = %q, want %q", msg, want)
				}
				c.Close(websocket.StatusNormalClosure, "")
			}

			// The API socket gets the full original URI and forwarding headers.
			for _, v := range []string{"v1", "v2"} {
				req, _ := http.NewRequest("GET", httpBase+"/"+v+"/api/channels/world/messages?limit=5", nil)
				req.Header.Set("Authorization", secret)
				resp, err := s.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var got seen
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("GET /%s/api: %d %v", v, resp.StatusCode, err)
				}
				if got.Backend != "api-"+v || got.URI != "/"+v+"/api/channels/world/messages?limit=5" {
					t.Errorf("API request reached %s with URI %s", got.Backend, got.URI)
				}
				if got.Auth != secret {
					t.Error("Authorization header was not passed to the API")
				}
				if got.RealIP != "127.0.0.1" || got.Forwarded != "127.0.0.1" || got.RequestID == "" {
					t.Errorf("forwarding headers: %+v", got)
				}
				if wantProto := map[bool]string{false: "http", true: "https"}[useTLS]; got.Proto != wantProto {
					t.Errorf("X-Forwarded-Proto = %q, want %q", got.Proto, wantProto)
				}
				if v == "v1" && resp.Header.Get("Sunset") != "Wed, 01 Jan 2031 00:00:00 GMT" {
					t.Errorf("deprecated v1 answered Sunset %q", resp.Header.Get("Sunset"))
				}
			}

			// A retired version answers 410 with a JSON error.
			for _, p := range []string{"/v0/ws", "/v0/api/tokens"} {
				code, e := s.getError(t, httpBase+p)
				if code != http.StatusGone || e.Error.Code != "version_not_allowed" || !strings.Contains(e.Error.Message, "v0 is retired") {
					t.Errorf("GET %s: %d %+v", p, code, e)
				}
			}
			if _, _, err := s.dial(ctx, wsBase+"/v0/ws", nil); err == nil || !strings.Contains(err.Error(), `HTTP 410 {"error":{"code":"version_not_allowed"`) {
				t.Errorf("upgrade to retired v0: %v", err)
			}

			// Anything else is 404 JSON.
			for _, p := range []string{"/", "/v9/ws", "/v9/api/tokens", "/v1/", "/v1/wsx", "/readyz", "/v1/healthz", "/v1/ws/readyz"} {
				code, e := s.getError(t, httpBase+p)
				if code != http.StatusNotFound || e.Error.Code != "not_found" {
					t.Errorf("GET %s: %d %+v", p, code, e)
				}
			}
		})
	}

	t.Run("body limit", func(t *testing.T) {
		post := func(n int) (int, errorBody) {
			resp, err := s.client.Post(s.ngx.HTTPURL+"/v2/api/ngwords", "application/json", strings.NewReader(strings.Repeat("x", n)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e errorBody
			json.NewDecoder(resp.Body).Decode(&e)
			return resp.StatusCode, e
		}
		// The largest body the API takes passes; one byte more is refused.
		if status, e := post(nginx.DefaultClientMaxBodyBytes); status != http.StatusOK {
			t.Errorf("%d-byte body: %d %+v", nginx.DefaultClientMaxBodyBytes, status, e)
		}
		if status, e := post(nginx.DefaultClientMaxBodyBytes + 1); status != http.StatusRequestEntityTooLarge || e.Error.Code != "too_large" {
			t.Errorf("%d-byte body: %d %+v", nginx.DefaultClientMaxBodyBytes+1, status, e)
		}
	})

	t.Run("access log", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.ngx.HTTPURL+"/v2/api/tokens?api_key=leak-me-not", nil)
		req.Header.Set("Authorization", secret)
		req.Header.Set("User-Agent", "kaiwa-test/1")
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// Every request above has been logged by now except possibly
		// WebSockets; wait for the last one and for a closed WebSocket.
		s.ngx.WaitAccessLog(t, 5*time.Second, func(l string) bool { return strings.Contains(l, "kaiwa-test/1") })
		s.ngx.WaitAccessLog(t, 5*time.Second, func(l string) bool { return strings.Contains(l, `"uri":"/v2/ws"`) })

		lines := s.ngx.AccessLog(t)
		var sawAPI, sawWS, sawRetired bool
		for _, l := range lines {
			for _, leak := range []string{"sekrit", "leak-me-not", "api_key", "Bearer"} {
				if strings.Contains(l, leak) {
					t.Errorf("access log leaks %q: %s", leak, l)
				}
			}
			var e struct {
				Time         string  `json:"time"`
				RemoteAddr   string  `json:"remote_addr"`
				Method       string  `json:"method"`
				URI          string  `json:"uri"`
				Version      string  `json:"version"`
				UserAgent    string  `json:"user_agent"`
				UpstreamAddr string  `json:"upstream_addr"`
				Status       int     `json:"status"`
				Bytes        int     `json:"bytes"`
				RequestTime  float64 `json:"request_time"`
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Errorf("access log line is not JSON: %v: %s", err, l)
				continue
			}
			if e.Time == "" || e.RemoteAddr != "127.0.0.1" || e.Method == "" || e.URI == "" || e.Status == 0 {
				t.Errorf("access log line lacks fields: %s", l)
			}
			switch {
			case e.URI == "/v2/api/tokens" && e.UserAgent == "kaiwa-test/1":
				sawAPI = e.Status == 200 && e.Version == "v2" && strings.Contains(e.UpstreamAddr, "api-v2.sock")
			case e.URI == "/v2/ws" && e.Status == 101:
				sawWS = e.Version == "v2" && strings.Contains(e.UpstreamAddr, "ua-v2-")
			case e.URI == "/v0/ws":
				sawRetired = e.Status == 410 && e.Version == "v0"
			}
		}
		if !sawAPI || !sawWS || !sawRetired {
			t.Errorf("access log misses entries (api %v, ws %v, retired %v):\n%s", sawAPI, sawWS, sawRetired, strings.Join(lines, "\n"))
		}
	})
}

func TestNginxHealth(t *testing.T) {
	t.Parallel()
	s := startStack(t, twoVersions(), 1, nil)
	get := func(path string) (int, []byte) {
		resp, err := s.client.Get(s.ngx.HTTPURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	// nginx answers its own health.
	if status, body := get("/healthz"); status != http.StatusOK || string(body) != `{"status":"ok"}`+"\n" {
		t.Errorf("GET /healthz: %d %s", status, body)
	}
	// A version's API health and readiness are the API process's own.
	for _, v := range []string{"v1", "v2"} {
		for _, probe := range []string{"healthz", "readyz"} {
			status, body := get("/" + v + "/api/" + probe + "?verbose=1")
			var got seen
			if err := json.Unmarshal(body, &got); err != nil || status != http.StatusOK {
				t.Fatalf("GET /%s/api/%s: %d %s", v, probe, status, body)
			}
			if got.Backend != "api-"+v || got.URI != "/"+probe+"?verbose=1" {
				t.Errorf("GET /%s/api/%s reached %s as %s", v, probe, got.Backend, got.URI)
			}
		}
	}
}

func TestNginxBalancesUASockets(t *testing.T) {
	t.Parallel()
	s := startStack(t, versions.Default(), 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	used := map[string]int{}
	for range 4 {
		c, backend, err := s.dial(ctx, s.ngx.WSURL+"/v1/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		used[backend]++
	}
	if used["ua-v1-0"] != 2 || used["ua-v1-1"] != 2 {
		t.Errorf("4 open connections spread as %v, want 2 on each UA socket", used)
	}
}

func TestNginxBackendDown(t *testing.T) {
	t.Parallel()
	dir := socketDir(t) // no backend listens here
	p := testenv.Nginx(t, nginx.Config{Registry: versions.Default(), Sockets: nginx.DirSockets(dir, 1)})
	resp, err := http.Get(p.HTTPURL + "/v1/api/tokens")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e errorBody
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusServiceUnavailable || e.Error.Code != "unavailable" {
		t.Errorf("API with no backend: %d %+v", resp.StatusCode, e)
	}
	// nginx itself is healthy all the same; the API's readiness is not.
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/v1/api/readyz": http.StatusServiceUnavailable} {
		resp, err := http.Get(p.HTTPURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s with no backend: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// burst opens n WebSockets at once through s and returns, for each, the
// time it took to open and its error.
func burst(s *stack, n int) ([]time.Duration, []error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	took := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			c, _, err := s.dial(ctx, s.ngx.WSURL+"/v1/ws", nil)
			took[i], errs[i] = time.Since(start), err
			if err == nil {
				c.CloseNow()
			}
		})
	}
	wg.Wait()
	return took, errs
}

func TestNginxParksUpgradeBursts(t *testing.T) {
	t.Parallel()
	const rate, n = 10, 8
	s := startStack(t, versions.Default(), 1, func(c *nginx.Config) {
		c.UpgradeRate, c.UpgradeBurst = rate, 50
	})
	took, errs := burst(s, n)
	var slowest time.Duration
	for i, err := range errs {
		if err != nil {
			t.Errorf("upgrade %d refused instead of parked: %v", i, err)
		}
		slowest = max(slowest, took[i])
	}
	// One upgrade passes at once and the others leave the queue one per
	// 1/rate seconds, so the burst takes about (n-1)/rate.
	if want := time.Duration(n-2) * time.Second / rate; slowest < want {
		t.Errorf("burst of %d upgrades at %d/s done in %v, want at least %v: not parked", n, rate, slowest, want)
	}
}

func TestNginxRefusesBeyondQueue(t *testing.T) {
	t.Parallel()
	s := startStack(t, versions.Default(), 1, func(c *nginx.Config) {
		c.UpgradeRate, c.UpgradeBurst = 1, 2
	})
	_, errs := burst(s, 8)
	var ok, refused int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case strings.Contains(err.Error(), `HTTP 429 {"error":{"code":"rate_limited"`):
			refused++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	// One passes, two wait in the queue, the rest are refused (one more may
	// pass if the burst reaches nginx over more than a second).
	if ok < 3 || ok > 4 || ok+refused != 8 {
		t.Errorf("8 upgrades with burst 2: %d upgraded, %d refused; want 3 (or 4) and the rest refused", ok, refused)
	}
}

func TestNginxPrefixHoldsEverything(t *testing.T) {
	t.Parallel()
	prefix := t.TempDir()
	p := testenv.Nginx(t, nginx.Config{Registry: versions.Default(), Prefix: prefix, Sockets: nginx.DirSockets(socketDir(t), 1)})
	resp, err := http.Get(p.HTTPURL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	p.WaitAccessLog(t, 5*time.Second, func(l string) bool { return strings.Contains(l, `"/nope"`) })
	for _, f := range []string{"nginx.pid", "error.log", "access.log", "client_body_temp", "proxy_temp"} {
		if _, err := os.Stat(filepath.Join(prefix, f)); err != nil {
			t.Errorf("prefix lacks %s: %v", f, err)
		}
	}
}

func TestNginxServesDemoDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"index.html":     "<!doctype html><title>demo</title>",
		"demo.css":       "body{}",
		"kaiwa/index.js": "export const x = 1;",
	}
	for name, body := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startStack(t, twoVersions(), 1, func(c *nginx.Config) { c.DemoDir = dir })
	noRedirect := *s.client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, useTLS := range []bool{false, true} {
		base, _ := s.base(useTLS)
		for path, want := range map[string]struct{ file, ctype string }{
			"/demo/":               {"index.html", "text/html"},
			"/demo/index.html":     {"index.html", "text/html"},
			"/demo/demo.css":       {"demo.css", "text/css"},
			"/demo/kaiwa/index.js": {"kaiwa/index.js", "text/javascript"},
		} {
			resp, err := s.client.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != files[want.file] {
				t.Errorf("GET %s = %d %q, want %s", path, resp.StatusCode, body, want.file)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, want.ctype) {
				t.Errorf("GET %s: Content-Type %q, want %s", path, ct, want.ctype)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("GET %s: Cache-Control %q", path, cc)
			}
		}
		resp, err := noRedirect.Get(base + "/demo")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || !strings.HasSuffix(loc, "/demo/") {
			t.Errorf("GET /demo = %d Location %q, want 301 to /demo/", resp.StatusCode, loc)
		}
		for _, path := range []string{"/demo/missing.js", "/demo/../go.mod", "/demox"} {
			if code, e := s.getError(t, base+path); code != http.StatusNotFound || e.Error.Code != "not_found" {
				t.Errorf("GET %s = %d %+v, want 404 not_found", path, code, e)
			}
		}
	}
}
