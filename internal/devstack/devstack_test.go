package devstack

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// fakeEnv makes the test binary act as the kaiwa binary: [Run] starts its
// children from it. The fake children serve the same sockets and health
// checks as the real ones, so Run's wiring is tested without them.
const fakeEnv = "DEVSTACK_TEST_FAKE_KAIWA"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		os.Exit(fakeKaiwa(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeKaiwa(args []string) int {
	flag := func(name string) string {
		if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
			return args[i+1]
		}
		return ""
	}
	switch {
	case len(args) >= 2 && args[0] == "migrate" && args[1] == "up":
		fmt.Println("migrations applied")
		return 0
	case len(args) >= 3 && args[0] == "tenant" && args[1] == "create" && args[2] == "demo":
		fmt.Fprintln(os.Stderr, "creating tenant demo")
		fmt.Println(`{"tenant":"demo","api_key":"kw_fake_demo_key"}`)
		return 0
	case len(args) >= 1 && (args[0] == "api" || args[0] == "ua"):
		name := args[0] + "-" + flag("--version")
		sock := strings.TrimPrefix(flag("--listen"), "unix:")
		l, err := net.Listen("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(map[string]any{"name": name, "uri": r.RequestURI, "args": args})
		})}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		go func() {
			<-sigs
			fmt.Println("stopping")
			if args[0] == "ua" {
				// Like the real UA: the drain takes its window (30s by
				// default) before the last session is closed.
				window := 30 * time.Second
				if d, err := time.ParseDuration(flag("--drain-window")); err == nil {
					window = d
				}
				time.Sleep(window)
				fmt.Println("drained")
			}
			srv.Close()
		}()
		fmt.Println("listening on", sock)
		srv.Serve(l)
		return 0
	}
	fmt.Fprintln(os.Stderr, "fake kaiwa: unexpected arguments", args)
	return 2
}

func TestRunStartsServesAndStopsInOrder(t *testing.T) {
	if _, err := nginx.Binary(); err != nil {
		t.Fatalf("%v; run make test, which installs nginx", err)
	}
	t.Setenv(fakeEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	varDir := t.TempDir()
	var stdout, stderr lockedBuffer
	logs := &recordHandler{}
	cfg := Config{
		Exe:          exe,
		VarDir:       varDir,
		Registry:     versions.NewRegistry(versions.Version{Name: "v0", Status: versions.Retired}, versions.Version{Name: "v1", Status: versions.Supported}),
		MySQLDSN:     "root@unix(/nonexistent.sock)/kaiwa", // the fake children do not use it
		NATSListen:   "127.0.0.1:0",
		HTTPListen:   testenv.FreeAddr(t),
		HTTPSListen:  testenv.FreeAddr(t),
		DrainTimeout: 2 * time.Second,
		ReadyTimeout: 20 * time.Second,
		Stdout:       &stdout,
		Stderr:       &stderr,
		Logger:       slog.New(logs),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Ctrl-C stops everything") {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no walkthrough after 30s\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	}
	banner := stdout.String()
	for _, want := range []string{
		"[migrate] migrations applied",
		"[ua-v1-0] listening on " + filepath.Join(varDir, "run", "ua-v1-0.sock"),
		"[ua-v1-1] listening on",
		"[api-v1] listening on " + filepath.Join(varDir, "run", "api-v1.sock"),
		"https://" + cfg.HTTPSListen + "/v1/api/",
		"wss://" + cfg.HTTPSListen + "/v1/ws",
		"http://" + cfg.HTTPListen + "/v1/api/",
		"ws://" + cfg.HTTPListen + "/v1/ws",
		"kw_fake_demo_key",
		`curl -k -X PUT "$KAIWA_API/channels/world"`,
		`{"kind":"open","title":"World"}`,
		`curl -k -X POST "$KAIWA_API/tokens"`,
		"chat --url wss://" + cfg.HTTPSListen + "/v1/ws --insecure --join world",
		`curl -k -X POST "$KAIWA_API/channels/world/messages"`,
		`curl -k "$KAIWA_API/channels/world/messages?limit=20"`,
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if !strings.Contains(stderr.String(), "[tenant] creating tenant demo") {
		t.Errorf("tenant command's stderr not prefixed:\n%s", stderr.String())
	}
	key, err := os.ReadFile(filepath.Join(varDir, "demo-api-key"))
	if err != nil || string(key) != "kw_fake_demo_key\n" {
		t.Errorf("demo key file: %q, %v", key, err)
	}
	if fi, err := os.Stat(filepath.Join(varDir, "demo-api-key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("demo key file mode: %v", err)
	}

	// nginx routes to the children over TLS with the generated certificate.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for path, wantName := range map[string]string{"/v1/api/tokens?x=1": "api-v1", "/v1/ws": "ua-v1"} {
		resp, err := client.Get("https://" + cfg.HTTPSListen + path)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Name string   `json:"name"`
			URI  string   `json:"uri"`
			Args []string `json:"args"`
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.Name != wantName || got.URI != path {
			t.Errorf("GET %s reached %q with %q", path, got.Name, got.URI)
		}
		if wantName == "api-v1" && (!slices.Contains(got.Args, "--logwriter") || !slices.Contains(got.Args, cfg.MySQLDSN)) {
			t.Errorf("API child args: %v", got.Args)
		}
		if wantName == "ua-v1" && slices.Contains(got.Args, "--mysql-dsn") {
			t.Errorf("UA child got database credentials: %v", got.Args)
		}
	}
	if resp, err := client.Get("https://" + cfg.HTTPSListen + "/v0/ws"); err != nil || resp.StatusCode != http.StatusGone {
		t.Errorf("retired v0: %v %v", resp, err)
	}

	// Ctrl-C: everything stops in the order of the drain: the UAs, the
	// API, then nginx (which carried the UAs' goodbyes to the clients).
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return 20s after cancel")
	}
	var order []string
	for _, r := range logs.records("child stopped") {
		order = append(order, r["child"].(string))
	}
	if len(order) != 4 || !strings.HasPrefix(order[0], "ua-") || !strings.HasPrefix(order[1], "ua-") || order[2] != "api-v1" || order[3] != "nginx" {
		t.Errorf("stop order %v, want the UAs, the API, then nginx", order)
	}
	if n := strings.Count(stdout.String(), "] stopping\n"); n != 3 {
		t.Errorf("%d children said they were stopping, want 3", n)
	}
	if c, err := net.DialTimeout("tcp", cfg.HTTPListen, time.Second); err == nil {
		c.Close()
		t.Error("nginx still listening after Run returned")
	}
}

// startFake starts a stack of fake children (see fakeKaiwa) with one live
// version, v1.
func startFake(t *testing.T, cfg Config) (*Stack, *lockedBuffer, *recordHandler) {
	t.Helper()
	if _, err := nginx.Binary(); err != nil {
		t.Fatalf("%v; run make test, which installs nginx", err)
	}
	t.Setenv(fakeEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var stdout lockedBuffer
	logs := &recordHandler{}
	cfg.Exe = exe
	cfg.VarDir = t.TempDir()
	cfg.Registry = versions.NewRegistry(versions.Version{Name: "v1", Status: versions.Supported})
	cfg.MySQLDSN = "root@unix(/nonexistent.sock)/kaiwa"
	cfg.NATSListen = "127.0.0.1:0"
	cfg.HTTPListen, cfg.HTTPSListen = testenv.FreeAddr(t), testenv.FreeAddr(t)
	cfg.Stdout, cfg.Stderr, cfg.Logger = &stdout, &stdout, slog.New(logs)
	cfg.Quiet = true
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v\n%s", err, stdout.String())
	}
	t.Cleanup(s.Stop)
	return s, &stdout, logs
}

// A UA stopped by the stack finishes its drain: the stack tells it a drain
// window and waits that long and a margin, however short DrainTimeout is.
func TestStopLetsUAsDrain(t *testing.T) {
	s, out, logs := startFake(t, Config{DrainWindow: 3 * time.Second, DrainTimeout: 2 * time.Second})
	began := time.Now()
	s.Stop()
	took := time.Since(began)
	if n := strings.Count(out.String(), "] drained\n"); n != 2 {
		t.Errorf("%d UAs finished their drain, want 2:\n%s", n, out.String())
	}
	if r := logs.records("child did not stop in time; killing"); len(r) > 0 {
		t.Errorf("children killed in their drain: %v", r)
	}
	if took > 12*time.Second {
		t.Errorf("Stop took %v with a 3s drain window", took)
	}
}

// The handles of a started stack kill, restart and roll its children.
func TestStackHandles(t *testing.T) {
	s, out, logs := startFake(t, Config{DrainWindow: 200 * time.Millisecond, MinBackoff: 50 * time.Millisecond})
	var names []string
	for _, p := range s.Processes() {
		names = append(names, p.Name())
	}
	if want := []string{"api-v1", "ua-v1-0", "ua-v1-1", "nginx"}; !slices.Equal(names, want) {
		t.Errorf("processes %v, want %v", names, want)
	}
	if len(s.UAs("v1")) != 2 || s.Process("nope") != nil || s.APIKey != "kw_fake_demo_key" {
		t.Errorf("UAs %v, APIKey %q", s.UAs("v1"), s.APIKey)
	}
	if !strings.HasPrefix(s.HTTPSURL, "https://127.0.0.1:") || !strings.HasPrefix(s.WSSURL, "wss://") || s.DSN == "" || s.NATSURL == "" {
		t.Errorf("addresses: %+v", s)
	}

	// Kill: the supervisor starts the child again after its backoff.
	ua := s.Process("ua-v1-0")
	pid := ua.Pid()
	if err := ua.Kill(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the killed UA to restart", 10*time.Second, func() bool { return ua.Starts() == 2 && ua.Pid() != 0 && ua.Pid() != pid })
	if err := s.WaitReady(context.Background(), "ua-v1-0"); err != nil {
		t.Fatal(err)
	}
	if len(logs.records("child exited; restarting")) != 1 {
		t.Errorf("the kill was not logged as an exit")
	}

	// RollUAs: each UA drains and comes back.
	if err := s.RollUAs(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ua.Starts() != 3 || s.Process("ua-v1-1").Starts() != 2 {
		t.Errorf("starts after a roll: %d and %d, want 3 and 2", ua.Starts(), s.Process("ua-v1-1").Starts())
	}
	if n := strings.Count(out.String(), "] drained\n"); n != 2 {
		t.Errorf("%d UAs drained in the roll, want 2", n)
	}
	if got := len(logs.records("child started")); got != 4+1+2 {
		t.Errorf("%d child starts logged, want 7", got)
	}
	if s.Process("api-v1").Starts() != 1 || s.Process("nginx").Starts() != 1 {
		t.Error("a roll restarted more than the UAs")
	}
}

func TestChildSpecs(t *testing.T) {
	t.Parallel()
	cfg := Config{
		Exe: "/opt/kaiwa", UAPerVersion: 2, DrainWindow: 3 * time.Second, DrainTimeout: 10 * time.Second,
		Registry: versions.NewRegistry(
			versions.Version{Name: "v0", Status: versions.Retired},
			versions.Version{Name: "v1", Status: versions.Deprecated},
			versions.Version{Name: "v2", Status: versions.Supported},
		),
	}
	apis, uas := childSpecs(cfg, "/r", "root@unix(/m.sock)/kaiwa", "nats://127.0.0.1:4223")
	var got []string
	for _, c := range append(apis, uas...) {
		if c.Path != "/opt/kaiwa" {
			t.Errorf("%s runs %s", c.Name, c.Path)
		}
		got = append(got, c.Name+" "+strings.Join(c.Args, " "))
	}
	want := []string{
		"api-v1 api --listen unix:/r/api-v1.sock --version v1 --mysql-dsn root@unix(/m.sock)/kaiwa --nats-url nats://127.0.0.1:4223 --log-requests --logwriter",
		"api-v2 api --listen unix:/r/api-v2.sock --version v2 --mysql-dsn root@unix(/m.sock)/kaiwa --nats-url nats://127.0.0.1:4223 --log-requests",
		"ua-v1-0 ua --listen unix:/r/ua-v1-0.sock --version v1 --nats-url nats://127.0.0.1:4223 --drain-window 3s --log-requests",
		"ua-v1-1 ua --listen unix:/r/ua-v1-1.sock --version v1 --nats-url nats://127.0.0.1:4223 --drain-window 3s --log-requests",
		"ua-v2-0 ua --listen unix:/r/ua-v2-0.sock --version v2 --nats-url nats://127.0.0.1:4223 --drain-window 3s --log-requests",
		"ua-v2-1 ua --listen unix:/r/ua-v2-1.sock --version v2 --nats-url nats://127.0.0.1:4223 --drain-window 3s --log-requests",
	}
	if !slices.Equal(got, want) {
		t.Errorf("children:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range uas {
		if c.StopTimeout != 13*time.Second {
			t.Errorf("%s may take %v to stop, want its drain window and the drain timeout, 13s", c.Name, c.StopTimeout)
		}
	}
	if socketOf(uas[3]) != "/r/ua-v2-1.sock" {
		t.Errorf("socketOf = %s", socketOf(uas[3]))
	}
}

func TestRemoveSocketKeepsOtherFiles(t *testing.T) {
	t.Parallel()
	dir := socketTempDir(t)
	sock := filepath.Join(dir, "a.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if err := removeSocket(sock)(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Error("stale socket left in place")
	}
	plain := filepath.Join(dir, "b.sock")
	os.WriteFile(plain, []byte("data"), 0o644)
	if err := removeSocket(plain)(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(plain); err != nil {
		t.Error("a regular file was removed")
	}
	if err := removeSocket(filepath.Join(dir, "none.sock"))(); err != nil {
		t.Errorf("missing socket: %v", err)
	}
}

func socketTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kwd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// scriptStack returns a stack whose kaiwa binary is a shell script that
// appends its arguments to a file, then runs body.
func scriptStack(t *testing.T, body string) (s *Stack, calls func() []string) {
	t.Helper()
	dir := t.TempDir()
	callFile := filepath.Join(dir, "calls")
	exe := filepath.Join(dir, "kaiwa")
	script := "#!/bin/sh\necho \"$*\" >> " + callFile + "\n" + body + "\n"
	if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var errOut lockedBuffer
	cfg := Config{Exe: exe, Stdout: io.Discard, Stderr: &errOut, Logger: slog.New(slog.DiscardHandler)}
	s = &Stack{cfg: cfg, log: cfg.Logger, sup: &Supervisor{Stdout: io.Discard, Stderr: &errOut}, DSN: "root@unix(/x.sock)/kaiwa"}
	return s, func() []string {
		b, _ := os.ReadFile(callFile)
		return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
	}
}

func TestEnsureDemoKeyCreatesOnce(t *testing.T) {
	t.Parallel()
	s, calls := scriptStack(t, `case "$1 $2" in "tenant create") echo '{"tenant":"demo","api_key":"kw_created"}';; *) exit 1;; esac`)
	keyFile := filepath.Join(t.TempDir(), "demo-api-key")
	for range 2 {
		key, err := ensureDemoKey(context.Background(), s, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if key != "kw_created" {
			t.Errorf("key = %q", key)
		}
	}
	if c := calls(); len(c) != 1 || c[0] != "tenant create demo --json --mysql-dsn root@unix(/x.sock)/kaiwa" {
		t.Errorf("calls = %q, want one tenant create", c)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi.Mode(), err)
	}
}

func TestEnsureDemoKeyRotatesWhenTenantExists(t *testing.T) {
	t.Parallel()
	s, calls := scriptStack(t, `case "$1 $2" in
  "tenant create") echo 'conflict: tenant demo exists' >&2; exit 1;;
  "tenant rotate-key") echo '{"tenant":"demo","api_key":"kw_rotated"}';;
  *) exit 1;;
esac`)
	keyFile := filepath.Join(t.TempDir(), "demo-api-key")
	key, err := ensureDemoKey(context.Background(), s, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if key != "kw_rotated" {
		t.Errorf("key = %q", key)
	}
	if b, _ := os.ReadFile(keyFile); string(b) != "kw_rotated\n" {
		t.Errorf("key file holds %q", b)
	}
	if c := calls(); len(c) != 2 || !strings.HasPrefix(c[1], "tenant rotate-key demo --json") {
		t.Errorf("calls = %q", c)
	}
}

func TestEnsureDemoKeyFailsClearly(t *testing.T) {
	t.Parallel()
	s, _ := scriptStack(t, `echo 'no database' >&2; exit 1`)
	_, err := ensureDemoKey(context.Background(), s, filepath.Join(t.TempDir(), "k"))
	if err == nil || !strings.Contains(err.Error(), "tenant create") || !strings.Contains(err.Error(), "tenant rotate-key") {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(err.Error(), "/x.sock") {
		t.Errorf("error shows the DSN: %v", err)
	}
}

func TestParseTenantKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"tenant":"demo","api_key":"k1"}` + "\n":                         "k1",
		`{"tenant":{"id":"demo"},"api_key":"k2"}`:                         "k2",
		`{"note":"x"}` + "\n" + `{"tenant":"demo","api_key":"k3"}` + "\n": "k3",
	} {
		if got, err := parseTenantKey([]byte(in)); err != nil || got != want {
			t.Errorf("parseTenantKey(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "tenant: demo\napi key: k\n", `{"tenant":"demo"}`} {
		if _, err := parseTenantKey([]byte(in)); err == nil {
			t.Errorf("parseTenantKey(%q) succeeded", in)
		}
	}
}

func TestWaitReadyNamesWhatIsDown(t *testing.T) {
	t.Parallel()
	dir := socketTempDir(t)
	up := filepath.Join(dir, "api-v1.sock")
	l, err := net.Listen("unix", up)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()

	if err := waitReady(context.Background(), 5*time.Second, []string{up}, tcp.Addr().String()); err != nil {
		t.Errorf("all up: %v", err)
	}
	down := filepath.Join(dir, "ua-v1-0.sock")
	err = waitReady(context.Background(), time.Second, []string{up, down}, tcp.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "ua-v1-0.sock") || strings.Contains(err.Error(), "api-v1.sock") {
		t.Errorf("one down: %v", err)
	}
}

func TestWalkthroughUsesOldestSupportedVersion(t *testing.T) {
	t.Parallel()
	reg := versions.NewRegistry(
		versions.Version{Name: "v1", Status: versions.Deprecated},
		versions.Version{Name: "v2", Status: versions.Supported},
		versions.Version{Name: "v3", Status: versions.Supported},
	)
	var b bytes.Buffer
	printWalkthrough(&b, walkthrough{
		cfg:    Config{Registry: reg, Exe: "/usr/local/bin/kaiwa", HTTPListen: "127.0.0.1:8080", HTTPSListen: "127.0.0.1:8443"},
		varDir: "var", keyFile: "/abs/var/demo-api-key", key: "kw_k", dsn: "d", natsURL: "nats://n",
	})
	out := b.String()
	for _, want := range []string{
		"https://127.0.0.1:8443/v2/api/", "wss://127.0.0.1:8443/v2/ws", "http://127.0.0.1:8080/v2/api/", "ws://127.0.0.1:8080/v2/ws",
		"version v1: /v1/api/ and /v1/ws", "version v3: /v3/api/ and /v3/ws",
		"KAIWA_KEY=$(cat var/demo-api-key)", "kw_k",
		"/usr/local/bin/kaiwa chat --url wss://127.0.0.1:8443/v2/ws --insecure --join world",
		`"ttl_seconds":3600`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("walkthrough lacks %q:\n%s", want, out)
		}
	}
}

func TestWalkthroughNamesTheDemoPage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	reg := versions.NewRegistry(versions.Version{Name: "v2", Status: versions.Supported})
	show := func(cfg Config) string {
		var b bytes.Buffer
		cfg.Registry, cfg.Exe, cfg.HTTPListen, cfg.HTTPSListen = reg, "/k", "127.0.0.1:8080", "127.0.0.1:8443"
		printWalkthrough(&b, walkthrough{cfg: cfg, varDir: "var", keyFile: "/v/demo-api-key"})
		return b.String()
	}
	if out := show(Config{}); strings.Contains(out, "/demo/") {
		t.Errorf("no DemoDir, yet the walkthrough names a demo page:\n%s", out)
	}
	out := show(Config{DemoDir: dir})
	if !strings.Contains(out, "https://127.0.0.1:8443/demo/") || !strings.Contains(out, "make build") {
		t.Errorf("an unbuilt demo: the walkthrough should name the page and make build:\n%s", out)
	}
	if err := os.MkdirAll(filepath.Join(dir, "kaiwa"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kaiwa", "index.js"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := show(Config{DemoDir: dir}); !strings.Contains(out, "https://127.0.0.1:8443/demo/") || strings.Contains(out, "make build") {
		t.Errorf("a built demo: the walkthrough should name the page only:\n%s", out)
	}
}
