package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// Config is what [Start] and [Run] start. Zero fields take the documented
// defaults.
type Config struct {
	// Exe is the kaiwa binary the children are started from; empty means
	// the running executable.
	Exe string
	// VarDir holds everything the stack writes; default "var".
	VarDir string
	// Registry is the set of protocol versions; default versions.Default().
	Registry *versions.Registry
	// UAPerVersion is the number of UA processes per live version; default 2.
	UAPerVersion int
	// MySQLDSN reaches an existing MySQL database; empty starts a private
	// MariaDB under VarDir/mysql.
	MySQLDSN string
	// NATSURL reaches an existing NATS server with JetStream; empty runs
	// one in-process on NATSListen.
	NATSURL string
	// NATSListen is the in-process NATS server's address; default
	// 127.0.0.1:4223 (a system NATS may hold 4222). Port 0 picks a free one.
	NATSListen string
	// HTTPListen and HTTPSListen are nginx's addresses; defaults
	// 127.0.0.1:8080 and 127.0.0.1:8443.
	HTTPListen  string
	HTTPSListen string
	// DrainWindow is passed to every UA as --drain-window: at shutdown a
	// UA spreads its sessions' reconnect requests over this long. Default
	// [DefaultDrainWindow], short so that Ctrl-C and SIGHUP stay quick;
	// production UAs default to 30s.
	DrainWindow time.Duration
	// DrainTimeout is how long a child may take to stop after its stop
	// signal before it is killed; default 10s. A UA gets DrainWindow plus
	// DrainTimeout, so its drain always completes.
	DrainTimeout time.Duration
	// ReadyTimeout bounds the wait for every child to answer; default 60s.
	ReadyTimeout time.Duration
	// UAArgs and APIArgs are extra flags for every UA and API child (tests
	// use them for tunables such as --log-level).
	UAArgs  []string
	APIArgs []string
	// Nginx, when set, adjusts the nginx configuration before it is
	// rendered (worker counts, timeouts).
	Nginx func(*nginx.Config)
	// DemoDir, when set, is the directory nginx serves at /demo/: the
	// TypeScript SDK's demo page (sdk/js/demo, which its build fills with
	// the SDK). A directory that does not exist is left out, with a note
	// in the log. Empty: no /demo/.
	DemoDir string
	// Supervisor tunables: the restart backoff of a child that exited
	// (defaults 1s doubling to 30s, see [Supervisor]).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Restart, when it delivers, replaces every UA process one at a time
	// (kaiwa dev sends on SIGHUP). Only [Run] reads it.
	Restart <-chan struct{}
	// Quiet leaves out the walkthrough printed once the stack is up.
	Quiet bool
	// Stdout receives the walkthrough and the children's output; Stderr
	// their error output. Defaults os.Stdout and os.Stderr.
	Stdout io.Writer
	Stderr io.Writer
	// Logger logs the supervisor's decisions; default text on Stderr.
	Logger *slog.Logger
}

// Defaults of [Config].
const (
	DefaultVarDir       = "var"
	DefaultUAPerVersion = 2
	DefaultNATSListen   = "127.0.0.1:4223"
	DefaultDrainWindow  = 2 * time.Second
	DemoTenant          = "demo"
)

func (c *Config) setDefaults() error {
	if c.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("devstack: find own executable: %w", err)
		}
		c.Exe = exe
	}
	if c.VarDir == "" {
		c.VarDir = DefaultVarDir
	}
	if c.Registry == nil {
		c.Registry = versions.Default()
	}
	if c.UAPerVersion <= 0 {
		c.UAPerVersion = DefaultUAPerVersion
	}
	if c.NATSListen == "" {
		c.NATSListen = DefaultNATSListen
	}
	if c.HTTPListen == "" {
		c.HTTPListen = nginx.DefaultHTTPListen
	}
	if c.HTTPSListen == "" {
		c.HTTPSListen = nginx.DefaultHTTPSListen
	}
	if c.DrainWindow <= 0 {
		c.DrainWindow = DefaultDrainWindow
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = time.Minute
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(c.Stderr, nil)).With("component", "dev")
	}
	if len(c.Registry.Live()) == 0 {
		return errors.New("devstack: the registry has no live version")
	}
	return nil
}

// Stack is a running development stack, as [Start] returns it: its
// processes by name, its addresses and credentials. Its methods are safe
// for concurrent use; [Stack.Stop] ends it.
type Stack struct {
	// HTTPURL and HTTPSURL are nginx's base URLs ("https://127.0.0.1:8443",
	// no trailing slash); WSURL and WSSURL the same with ws:// and wss://.
	HTTPURL, HTTPSURL string
	WSURL, WSSURL     string
	// CertFile is the certificate nginx serves (self-signed).
	CertFile string
	// DSN reaches the stack's MySQL database; NATSURL its NATS server.
	DSN     string
	NATSURL string
	// APIKey is the demo tenant's API key; VarDir the absolute var
	// directory; AccessLog nginx's access log.
	APIKey    string
	VarDir    string
	AccessLog string

	cfg  Config
	log  *slog.Logger
	sup  *Supervisor
	db   *MariaDB
	nats *natsserver.Server
	ngx  *Process
	uas  []*Process
	apis []*Process
	// runDir holds the children's sockets.
	runDir string

	stopOnce sync.Once
}

// Start starts the development stack described by cfg and returns once
// every child answers and the demo tenant's key is known (the walkthrough
// printed, unless cfg.Quiet). When a part cannot be started it stops what
// it had started and returns the error. The children outlive ctx: stop
// them with [Stack.Stop]. A cancelled ctx interrupts the start.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	exe, err := filepath.Abs(cfg.Exe)
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	cfg.Exe = exe
	if cfg.DemoDir != "" {
		if cfg.DemoDir, err = filepath.Abs(cfg.DemoDir); err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
		if fi, err := os.Stat(cfg.DemoDir); err != nil || !fi.IsDir() {
			cfg.Logger.Info("no demo page: its directory is not there", "dir", cfg.DemoDir)
			cfg.DemoDir = ""
		}
	}
	varDir, err := filepath.Abs(cfg.VarDir)
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	s := &Stack{cfg: cfg, log: cfg.Logger, VarDir: varDir, sup: &Supervisor{
		Stdout: cfg.Stdout, Stderr: cfg.Stderr, Logger: cfg.Logger, DrainTimeout: cfg.DrainTimeout,
		MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff,
	}}
	if err := s.start(ctx, varDir); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Run starts the development stack described by cfg, prints how to use it,
// and runs until ctx is cancelled; then it stops everything in the order
// of [Stack.Stop] and returns nil. Each delivery on cfg.Restart rolls the
// UAs ([Stack.RollUAs]). It returns an error, after stopping what it had
// started, when a part cannot be started.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting: a clean stop, not a failure
		}
		return err
	}
	defer s.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cfg.Restart:
			if err := s.RollUAs(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("rolling restart", "err", err)
			}
		}
	}
}

// Process returns the supervised child called name ("nginx", "api-v1",
// "ua-v2-0"), or nil.
func (s *Stack) Process(name string) *Process {
	for _, p := range s.Processes() {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

// Processes returns every supervised child: the APIs, the UAs, nginx.
func (s *Stack) Processes() []*Process {
	out := append(append([]*Process{}, s.apis...), s.uas...)
	if s.ngx != nil {
		out = append(out, s.ngx)
	}
	return out
}

// UAs returns the UA processes of version v, in socket order.
func (s *Stack) UAs(v string) []*Process {
	var out []*Process
	for _, p := range s.uas {
		if strings.HasPrefix(p.Name(), "ua-"+v+"-") {
			out = append(out, p)
		}
	}
	return out
}

// Socket returns the unix socket a UA or API child listens on (its
// /healthz, /readyz and, for a UA, /metrics answer there), or "".
func (s *Stack) Socket(name string) string {
	if p := s.Process(name); p != nil {
		return socketOf(p.child)
	}
	return ""
}

// WaitReady polls the named children's GET /healthz until they all
// answer, or fails after the stack's ReadyTimeout.
func (s *Stack) WaitReady(ctx context.Context, names ...string) error {
	var socks []string
	for _, n := range names {
		sock := s.Socket(n)
		if sock == "" {
			return fmt.Errorf("devstack: no child %q with a socket", n)
		}
		socks = append(socks, sock)
	}
	return waitReady(ctx, s.cfg.ReadyTimeout, socks, "")
}

// RollUAs replaces every UA process, one at a time: the old one drains
// (its clients are asked to reconnect, and do so to the others), the new
// one starts on the same socket, and the next waits until it answers.
// It is what SIGHUP does to kaiwa dev.
func (s *Stack) RollUAs(ctx context.Context) error {
	s.log.Info("rolling restart of the UAs", "count", len(s.uas))
	for _, p := range s.uas {
		p.Restart()
		if err := waitReady(ctx, s.cfg.ReadyTimeout, []string{socketOf(p.child)}, ""); err != nil {
			return fmt.Errorf("UA %s did not come back: %w", p.Name(), err)
		}
		s.log.Info("rolling restart: replaced", "ua", p.Name())
	}
	s.log.Info("rolling restart done")
	return nil
}

// Stop stops the stack in the order of the drain: the UAs first (they send
// closing, and reconnect to v2 sessions, through nginx, within their drain
// window), then the APIs, then nginx, then NATS and MariaDB when the stack
// started them. It returns when everything is gone; later calls do
// nothing.
func (s *Stack) Stop() {
	s.stopOnce.Do(func() {
		s.log.Info("stopping: UAs, APIs, nginx, NATS, MariaDB")
		StopAll(s.uas...)
		StopAll(s.apis...)
		if s.ngx != nil {
			s.ngx.Stop()
		}
		if s.nats != nil {
			s.nats.Shutdown()
			s.nats.WaitForShutdown()
		}
		if s.db != nil {
			if err := s.db.Stop(); err != nil {
				s.log.Warn("stop MariaDB", "err", err)
			}
		}
		s.log.Info("stopped")
	})
}

func (s *Stack) start(ctx context.Context, varDir string) error {
	cfg := s.cfg
	runDir := filepath.Join(varDir, "run")
	s.runDir = runDir
	for _, d := range []string{varDir, runDir, filepath.Join(varDir, "nginx")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
	}
	keyFile := filepath.Join(varDir, "demo-api-key")

	// MySQL.
	s.DSN = cfg.MySQLDSN
	if s.DSN == "" {
		s.log.Info("starting MariaDB", "dir", filepath.Join(varDir, "mysql"))
		out := s.sup.lineWriter("mariadb", cfg.Stderr)
		db, err := StartMariaDB(ctx, filepath.Join(varDir, "mysql"), out)
		out.flush()
		if err != nil {
			return err
		}
		s.db, s.DSN = db, db.DSN
		if db.Initialized {
			// A key from an earlier database is no longer valid.
			_ = os.Remove(keyFile)
		}
	}

	// NATS.
	s.NATSURL = cfg.NATSURL
	if s.NATSURL == "" {
		ns, err := startNATS(cfg.NATSListen, filepath.Join(varDir, "nats"))
		if err != nil {
			return err
		}
		s.nats, s.NATSURL = ns, ns.ClientURL()
		s.log.Info("NATS running in-process", "url", s.NATSURL)
	}

	// Schema.
	if err := s.runOnce(ctx, "migrate", nil, "migrate", "up", "--mysql-dsn", s.DSN); err != nil {
		return err
	}

	// Backends.
	apis, uas := childSpecs(cfg, runDir, s.DSN, s.NATSURL)
	bg := context.WithoutCancel(ctx)
	for _, c := range apis {
		s.apis = append(s.apis, s.sup.Start(bg, c))
	}
	for _, c := range uas {
		s.uas = append(s.uas, s.sup.Start(bg, c))
	}

	// nginx.
	ngxChild, ncfg, err := nginxChild(cfg, varDir, runDir)
	if err != nil {
		return err
	}
	s.ngx = s.sup.Start(bg, ngxChild)
	s.HTTPURL, s.WSURL = "http://"+ncfg.HTTPListen, "ws://"+ncfg.HTTPListen
	s.HTTPSURL, s.WSSURL = "https://"+ncfg.HTTPSListen, "wss://"+ncfg.HTTPSListen
	s.CertFile = ncfg.CertFile
	s.AccessLog = filepath.Join(varDir, "nginx", "access.log")

	// Wait for every child to answer.
	var sockets []string
	for _, c := range append(apis, uas...) {
		sockets = append(sockets, socketOf(c))
	}
	if err := waitReady(ctx, cfg.ReadyTimeout, sockets, cfg.HTTPListen); err != nil {
		return err
	}

	key, err := ensureDemoKey(ctx, s, keyFile)
	if err != nil {
		return err
	}
	s.APIKey = key
	if !cfg.Quiet {
		printWalkthrough(cfg.Stdout, walkthrough{
			cfg: cfg, varDir: cfg.VarDir, keyFile: keyFile, key: key, dsn: s.DSN, natsURL: s.NATSURL,
			accessLog: s.AccessLog,
		})
	}
	return nil
}

// childSpecs lists the API and UA children for every live version: the
// first API also runs the log writer. Both log each request (a UA each
// connect) at info. A UA drains over cfg.DrainWindow and may take that
// plus cfg.DrainTimeout to stop.
func childSpecs(cfg Config, runDir, dsn, natsURL string) (apis, uas []Child) {
	for i, v := range cfg.Registry.Live() {
		sock := nginx.APISocket(runDir, v.Name)
		args := []string{"api", "--listen", "unix:" + sock, "--version", v.Name, "--mysql-dsn", dsn, "--nats-url", natsURL, "--log-requests"}
		if i == 0 {
			args = append(args, "--logwriter")
		}
		args = append(args, cfg.APIArgs...)
		apis = append(apis, Child{Name: "api-" + v.Name, Path: cfg.Exe, Args: args, Before: removeSocket(sock)})
		for j := range cfg.UAPerVersion {
			sock := nginx.UASocket(runDir, v.Name, j)
			args := []string{"ua", "--listen", "unix:" + sock, "--version", v.Name, "--nats-url", natsURL,
				"--drain-window", cfg.DrainWindow.String(), "--log-requests"}
			uas = append(uas, Child{
				Name: fmt.Sprintf("ua-%s-%d", v.Name, j), Path: cfg.Exe,
				Args:        append(args, cfg.UAArgs...),
				Before:      removeSocket(sock),
				StopTimeout: cfg.DrainWindow + cfg.DrainTimeout,
			})
		}
	}
	return apis, uas
}

// socketOf returns the unix socket a child listens on.
func socketOf(c Child) string {
	for i, a := range c.Args {
		if a == "--listen" && i+1 < len(c.Args) {
			return strings.TrimPrefix(c.Args[i+1], "unix:")
		}
	}
	return ""
}

// removeSocket removes a socket file a crashed child left behind.
func removeSocket(path string) func() error {
	return func() error {
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return os.Remove(path)
		}
		return nil
	}
}

// nginxChild renders the nginx configuration and checks it with nginx -t.
func nginxChild(cfg Config, varDir, runDir string) (Child, nginx.Config, error) {
	bin, err := nginx.Binary()
	if err != nil {
		return Child{}, nginx.Config{}, err
	}
	certFile, keyFile, err := nginx.SelfSignedCert(filepath.Join(varDir, "tls"))
	if err != nil {
		return Child{}, nginx.Config{}, err
	}
	prefix := filepath.Join(varDir, "nginx")
	ncfg := nginx.Config{
		Registry:    cfg.Registry,
		Prefix:      prefix,
		HTTPListen:  cfg.HTTPListen,
		HTTPSListen: cfg.HTTPSListen,
		CertFile:    certFile,
		KeyFile:     keyFile,
		Sockets:     nginx.DirSockets(runDir, cfg.UAPerVersion),
		// Ctrl-C should not wait long for WebSockets to close.
		ShutdownTimeout: 3 * time.Second,
		// The dev stack is what kaiwa bench measures through nginx, with
		// up to 10,000 clients on one loopback source address.
		PerIPConns:       -1,
		PerIPUpgradeRate: -1,
		DemoDir:          cfg.DemoDir,
	}
	if os.Geteuid() == 0 {
		ncfg.User = "root"
	}
	if cfg.Nginx != nil {
		cfg.Nginx(&ncfg)
	}
	var b bytes.Buffer
	if err := nginx.Render(&b, ncfg); err != nil {
		return Child{}, ncfg, err
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, b.Bytes(), 0o644); err != nil {
		return Child{}, ncfg, fmt.Errorf("devstack: %w", err)
	}
	if out, err := exec.Command(bin, nginx.CheckArgs(prefix, conf)...).CombinedOutput(); err != nil {
		return Child{}, ncfg, fmt.Errorf("devstack: nginx -t %s: %w\n%s", conf, err, out)
	}
	return Child{Name: "nginx", Path: bin, Args: nginx.ServeArgs(prefix, conf), StopSignal: syscall.SIGQUIT}, ncfg, nil
}

func startNATS(listen, storeDir string) (*natsserver.Server, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("devstack: NATS address %q: %w", listen, err)
	}
	port, err := net.LookupPort("tcp", portStr)
	if err != nil {
		return nil, fmt.Errorf("devstack: NATS address %q: %w", listen, err)
	}
	if port == 0 {
		port = -1 // any free port; nats-server reads 0 as its default 4222
	}
	ns, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "kaiwa-dev",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		// As kaiwa nats: each session's wildcard subscriptions would make
		// nats-server walk its whole match cache at each connect.
		NoSublistCache: true,
		NoLog:          true,
	})
	if err != nil {
		return nil, fmt.Errorf("devstack: NATS: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("devstack: NATS not ready on %s (is the port taken?)", listen)
	}
	return ns, nil
}

// runOnce runs the kaiwa child args to completion, its stderr prefixed
// with name, and returns its stdout in out when out is not nil.
func (s *Stack) runOnce(ctx context.Context, name string, out *bytes.Buffer, args ...string) error {
	cmd := exec.CommandContext(ctx, s.cfg.Exe, args...)
	errw := s.sup.lineWriter(name, s.cfg.Stderr)
	defer errw.flush()
	cmd.Stderr = errw
	if out != nil {
		cmd.Stdout = out
	} else {
		outw := s.sup.lineWriter(name, s.cfg.Stdout)
		defer outw.flush()
		cmd.Stdout = outw
	}
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("devstack: kaiwa %s: %w", strings.Join(redactArgs(args), " "), err)
	}
	return nil
}

// redactArgs hides the value after --mysql-dsn, which may hold a password.
func redactArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == "--mysql-dsn" && i+1 < len(out) {
			out[i+1] = "…"
		}
	}
	return out
}

// waitReady polls every unix socket's GET /healthz and nginx's port until
// all answer, or fails after timeout naming what did not answer.
func waitReady(ctx context.Context, timeout time.Duration, sockets []string, nginxAddr string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pending := map[string]func() error{}
	for _, sock := range sockets {
		pending[filepath.Base(sock)] = func() error { return healthz(ctx, sock) }
	}
	if nginxAddr != "" {
		pending["nginx "+nginxAddr] = func() error {
			c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", nginxAddr)
			if err == nil {
				c.Close()
			}
			return err
		}
	}
	last := map[string]error{}
	for {
		for name, check := range pending {
			if err := check(); err != nil {
				last[name] = err
			} else {
				delete(pending, name)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var msgs []string
			for name := range pending {
				msgs = append(msgs, fmt.Sprintf("%s: %v", name, last[name]))
			}
			return fmt.Errorf("devstack: not ready after %v: %s", timeout, strings.Join(msgs, "; "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// healthz asks the server on a unix socket for GET /healthz.
func healthz(ctx context.Context, sock string) error {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	return nil
}

// ensureDemoKey returns the demo tenant's API key from keyFile, or makes
// the tenant (or, when it exists, a new key for it) and saves the key.
func ensureDemoKey(ctx context.Context, s *Stack, keyFile string) (string, error) {
	if b, err := os.ReadFile(keyFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	var out bytes.Buffer
	errCreate := s.runOnce(ctx, "tenant", &out, "tenant", "create", DemoTenant, "--json", "--mysql-dsn", s.DSN)
	if errCreate != nil {
		// Most likely the tenant exists from an earlier run whose key file
		// is gone: give it a new key.
		s.log.Info("demo tenant not created; rotating its key", "err", errCreate)
		out.Reset()
		if err := s.runOnce(ctx, "tenant", &out, "tenant", "rotate-key", DemoTenant, "--json", "--mysql-dsn", s.DSN); err != nil {
			return "", errors.Join(errCreate, err)
		}
	}
	key, err := parseTenantKey(out.Bytes())
	if err != nil {
		return "", err
	}
	if err := writeKeyFile(keyFile, key); err != nil {
		return "", err
	}
	return key, nil
}

// parseTenantKey reads the {"tenant":..,"api_key":..} object printed by
// "kaiwa tenant create|rotate-key --json".
func parseTenantKey(out []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var v struct {
			Tenant json.RawMessage `json:"tenant"`
			APIKey string          `json:"api_key"`
		}
		if err := dec.Decode(&v); err != nil {
			return "", fmt.Errorf("devstack: no api_key in the tenant command's output %q", out)
		}
		if v.APIKey != "" {
			return v.APIKey, nil
		}
	}
}

func writeKeyFile(name, key string) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(key+"\n"), 0o600); err != nil {
		return fmt.Errorf("devstack: save demo key: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("devstack: save demo key: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("devstack: save demo key: %w", err)
	}
	return nil
}
