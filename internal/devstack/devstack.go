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
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// Config is what [Run] starts. Zero fields take the documented defaults.
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
	// DrainTimeout is how long a child may take to stop after SIGTERM
	// before it is killed; default 10s.
	DrainTimeout time.Duration
	// ReadyTimeout bounds the wait for every child to answer; default 60s.
	ReadyTimeout time.Duration
	// Restart, when it delivers, replaces every UA process one at a time
	// (kaiwa dev sends on SIGHUP).
	Restart <-chan struct{}
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

// stack is what Run has started, so it can be stopped in order.
type stack struct {
	cfg   Config
	log   *slog.Logger
	sup   *Supervisor
	db    *MariaDB
	nats  *natsserver.Server
	ngx   *Process
	uas   []*Process
	apis  []*Process
	dsn   string
	natsU string
}

// Run starts the development stack described by cfg, prints how to use it,
// and runs until ctx is cancelled; then it stops everything in order
// (nginx, UAs, APIs, NATS, MariaDB) and returns nil. It returns an error,
// after stopping what it had started, when a part cannot be started.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	exe, err := filepath.Abs(cfg.Exe)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	cfg.Exe = exe
	varDir, err := filepath.Abs(cfg.VarDir)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s := &stack{cfg: cfg, log: cfg.Logger, sup: &Supervisor{
		Stdout: cfg.Stdout, Stderr: cfg.Stderr, Logger: cfg.Logger, DrainTimeout: cfg.DrainTimeout,
	}}
	defer s.stop()
	if err := s.start(ctx, varDir); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting: a clean stop, not a failure
		}
		return err
	}
	for {
		select {
		case <-ctx.Done():
			s.log.Info("stopping: nginx, UAs, APIs, NATS, MariaDB")
			return nil
		case <-cfg.Restart:
			s.rollUAs(ctx)
		}
	}
}

// rollUAs replaces every UA process, one at a time: the old one drains
// (its clients reconnect to the others), the new one starts on the same
// socket, and the next waits until it answers.
func (s *stack) rollUAs(ctx context.Context) {
	s.log.Info("rolling restart of the UAs", "count", len(s.uas))
	bg := context.WithoutCancel(ctx)
	for i, p := range s.uas {
		child := p.child
		p.Stop()
		s.uas[i] = s.sup.Start(bg, child)
		if err := waitReady(ctx, s.cfg.ReadyTimeout, []string{socketOf(child)}, ""); err != nil {
			s.log.Error("rolling restart: UA did not come back", "ua", child.Name, "err", err)
			return
		}
		s.log.Info("rolling restart: replaced", "ua", child.Name)
	}
	s.log.Info("rolling restart done")
}

func (s *stack) start(ctx context.Context, varDir string) error {
	cfg := s.cfg
	runDir := filepath.Join(varDir, "run")
	for _, d := range []string{varDir, runDir, filepath.Join(varDir, "nginx")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
	}
	keyFile := filepath.Join(varDir, "demo-api-key")

	// MySQL.
	s.dsn = cfg.MySQLDSN
	if s.dsn == "" {
		s.log.Info("starting MariaDB", "dir", filepath.Join(varDir, "mysql"))
		out := s.sup.lineWriter("mariadb", cfg.Stderr)
		db, err := StartMariaDB(ctx, filepath.Join(varDir, "mysql"), out)
		out.flush()
		if err != nil {
			return err
		}
		s.db, s.dsn = db, db.DSN
		if db.Initialized {
			// A key from an earlier database is no longer valid.
			_ = os.Remove(keyFile)
		}
	}

	// NATS.
	s.natsU = cfg.NATSURL
	if s.natsU == "" {
		ns, err := startNATS(cfg.NATSListen, filepath.Join(varDir, "nats"))
		if err != nil {
			return err
		}
		s.nats, s.natsU = ns, ns.ClientURL()
		s.log.Info("NATS running in-process", "url", s.natsU)
	}

	// Schema.
	if err := s.runOnce(ctx, "migrate", nil, "migrate", "up", "--mysql-dsn", s.dsn); err != nil {
		return err
	}

	// Backends.
	apis, uas := childSpecs(cfg, runDir, s.dsn, s.natsU)
	bg := context.WithoutCancel(ctx)
	for _, c := range apis {
		s.apis = append(s.apis, s.sup.Start(bg, c))
	}
	for _, c := range uas {
		s.uas = append(s.uas, s.sup.Start(bg, c))
	}

	// nginx.
	ngxChild, err := nginxChild(cfg, varDir, runDir)
	if err != nil {
		return err
	}
	s.ngx = s.sup.Start(bg, ngxChild)

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
	printWalkthrough(cfg.Stdout, walkthrough{
		cfg: cfg, varDir: cfg.VarDir, keyFile: keyFile, key: key, dsn: s.dsn, natsURL: s.natsU,
		accessLog: filepath.Join(varDir, "nginx", "access.log"),
	})
	return nil
}

// stop stops whatever was started, in order.
func (s *stack) stop() {
	if s.ngx != nil {
		s.ngx.Stop()
	}
	StopAll(s.uas...)
	StopAll(s.apis...)
	if s.nats != nil {
		s.nats.Shutdown()
		s.nats.WaitForShutdown()
	}
	if s.db != nil {
		if err := s.db.Stop(); err != nil {
			s.log.Warn("stop MariaDB", "err", err)
		}
	}
}

// childSpecs lists the API and UA children for every live version: the
// first API also runs the log writer.
func childSpecs(cfg Config, runDir, dsn, natsURL string) (apis, uas []Child) {
	for i, v := range cfg.Registry.Live() {
		sock := nginx.APISocket(runDir, v.Name)
		args := []string{"api", "--listen", "unix:" + sock, "--version", v.Name, "--mysql-dsn", dsn, "--nats-url", natsURL}
		if i == 0 {
			args = append(args, "--logwriter")
		}
		apis = append(apis, Child{Name: "api-" + v.Name, Path: cfg.Exe, Args: args, Before: removeSocket(sock)})
		for j := range cfg.UAPerVersion {
			sock := nginx.UASocket(runDir, v.Name, j)
			uas = append(uas, Child{
				Name: fmt.Sprintf("ua-%s-%d", v.Name, j), Path: cfg.Exe,
				Args:   []string{"ua", "--listen", "unix:" + sock, "--version", v.Name, "--nats-url", natsURL},
				Before: removeSocket(sock),
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
func nginxChild(cfg Config, varDir, runDir string) (Child, error) {
	bin, err := nginx.Binary()
	if err != nil {
		return Child{}, err
	}
	certFile, keyFile, err := nginx.SelfSignedCert(filepath.Join(varDir, "tls"))
	if err != nil {
		return Child{}, err
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
	}
	if os.Geteuid() == 0 {
		ncfg.User = "root"
	}
	var b bytes.Buffer
	if err := nginx.Render(&b, ncfg); err != nil {
		return Child{}, err
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, b.Bytes(), 0o644); err != nil {
		return Child{}, fmt.Errorf("devstack: %w", err)
	}
	if out, err := exec.Command(bin, nginx.CheckArgs(prefix, conf)...).CombinedOutput(); err != nil {
		return Child{}, fmt.Errorf("devstack: nginx -t %s: %w\n%s", conf, err, out)
	}
	return Child{Name: "nginx", Path: bin, Args: nginx.ServeArgs(prefix, conf), StopSignal: syscall.SIGQUIT}, nil
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
		NoLog:      true,
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
func (s *stack) runOnce(ctx context.Context, name string, out *bytes.Buffer, args ...string) error {
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
func ensureDemoKey(ctx context.Context, s *stack, keyFile string) (string, error) {
	if b, err := os.ReadFile(keyFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	var out bytes.Buffer
	errCreate := s.runOnce(ctx, "tenant", &out, "tenant", "create", DemoTenant, "--json", "--mysql-dsn", s.dsn)
	if errCreate != nil {
		// Most likely the tenant exists from an earlier run whose key file
		// is gone: give it a new key.
		s.log.Info("demo tenant not created; rotating its key", "err", errCreate)
		out.Reset()
		if err := s.runOnce(ctx, "tenant", &out, "tenant", "rotate-key", DemoTenant, "--json", "--mysql-dsn", s.dsn); err != nil {
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
