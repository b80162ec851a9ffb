package testenv

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/nginx"
)

// NginxProc is a running nginx started by [Nginx].
type NginxProc struct {
	// HTTPURL and HTTPSURL are the plain and TLS base URLs
	// ("http://127.0.0.1:PORT", no trailing slash).
	HTTPURL  string
	HTTPSURL string
	// WSURL and WSSURL are the same bases with ws:// and wss://.
	WSURL  string
	WSSURL string
	// Prefix is nginx's -p directory; ConfPath is the rendered config.
	Prefix   string
	ConfPath string
	// AccessLogPath and ErrorLogPath are nginx's logs.
	AccessLogPath string
	ErrorLogPath  string
	// CertFile is the PEM certificate nginx serves (self-signed unless the
	// config named one); tests trust it through tls.Config.RootCAs.
	CertFile string
	// Config is the configuration as rendered, defaults filled in.
	Config nginx.Config
}

// nginxStartAttempts bounds retries when another process takes a picked
// port before nginx binds it.
const nginxStartAttempts = 3

// Nginx renders cfg into a fresh prefix directory and runs a real nginx
// with it until the test ends. Empty HTTPListen and HTTPSListen get free
// loopback ports, an empty Prefix gets a temporary directory, and missing
// CertFile/KeyFile get a self-signed certificate; as root, an empty User
// becomes "root" so workers can reach sockets in private directories. The
// binary is $KAIWA_NGINX, nginx on PATH or /usr/sbin/nginx.
//
// The config is checked with nginx -t before nginx starts, and Nginx
// returns once nginx accepts connections on both listeners. nginx is
// stopped in t.Cleanup; when the test failed, its error log is logged.
func Nginx(t testing.TB, cfg nginx.Config) *NginxProc {
	t.Helper()
	bin, err := nginx.Binary()
	if err != nil {
		t.Fatalf("testenv: %v; run make test, which installs nginx", err)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = t.TempDir()
	}
	if cfg.User == "" && os.Geteuid() == 0 {
		cfg.User = "root"
	}
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		cfg.CertFile, cfg.KeyFile, err = nginx.SelfSignedCert(filepath.Join(cfg.Prefix, "tls"))
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	pickHTTP, pickHTTPS := cfg.HTTPListen == "", cfg.HTTPSListen == ""
	var lastErr string
	for attempt := 0; attempt < nginxStartAttempts; attempt++ {
		c := cfg
		if pickHTTP {
			c.HTTPListen = FreeAddr(t)
		}
		if pickHTTPS {
			c.HTTPSListen = FreeAddr(t)
		}
		p, out, err := startNginx(t, bin, c)
		if err == nil {
			return p
		}
		lastErr = err.Error() + "\n" + out
		if !strings.Contains(out, "Address already in use") || (!pickHTTP && !pickHTTPS) {
			break
		}
	}
	t.Fatalf("testenv: start nginx: %s", lastErr)
	return nil
}

// startNginx runs one nginx for cfg. It returns nginx's output with the
// error when nginx failed to start.
func startNginx(t testing.TB, bin string, cfg nginx.Config) (*NginxProc, string, error) {
	t.Helper()
	conf := filepath.Join(cfg.Prefix, "nginx.conf")
	var rendered bytes.Buffer
	if err := nginx.Render(&rendered, cfg); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := os.WriteFile(conf, rendered.Bytes(), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if out, err := exec.Command(bin, nginx.CheckArgs(cfg.Prefix, conf)...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: nginx -t: %v\n%s\nconfig:\n%s", err, out, rendered.Bytes())
	}

	var out nginxOutput
	cmd := exec.Command(bin, nginx.ServeArgs(cfg.Prefix, conf)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	p := &NginxProc{
		HTTPURL:       "http://" + cfg.HTTPListen,
		Prefix:        cfg.Prefix,
		ConfPath:      conf,
		AccessLogPath: cfg.AccessLog,
		ErrorLogPath:  filepath.Join(cfg.Prefix, "error.log"),
		CertFile:      cfg.CertFile,
		Config:        cfg,
	}
	if p.AccessLogPath == "" {
		p.AccessLogPath = filepath.Join(cfg.Prefix, "access.log")
	}
	p.WSURL = "ws://" + cfg.HTTPListen
	addrs := []string{cfg.HTTPListen}
	if cfg.HTTPSListen != "" {
		p.HTTPSURL = "https://" + cfg.HTTPSListen
		p.WSSURL = "wss://" + cfg.HTTPSListen
		addrs = append(addrs, cfg.HTTPSListen)
	}

	stop := func() {
		// SIGTERM is nginx's fast shutdown; the whole process group goes so
		// no worker outlives the test.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}

	deadline := time.Now().Add(10 * time.Second)
	for _, a := range addrs {
		for {
			conn, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case err := <-exited:
				elog, _ := os.ReadFile(p.ErrorLogPath)
				return nil, out.String() + string(elog), errors.Join(errors.New("nginx exited"), err)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				stop()
				return nil, out.String(), errors.New("nginx did not accept connections on " + a + " within 10s")
			}
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			if b, err := os.ReadFile(p.ErrorLogPath); err == nil && len(b) > 0 {
				t.Logf("nginx error log:\n%s", b)
			}
			if s := out.String(); s != "" {
				t.Logf("nginx output:\n%s", s)
			}
		}
	})
	return p, "", nil
}

// AccessLog returns the lines of the access log written so far.
func (p *NginxProc) AccessLog(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(p.AccessLogPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("testenv: read access log: %v", err)
	}
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
}

// WaitAccessLog polls the access log until match accepts one of its lines
// and returns that line, failing the test after timeout. nginx writes a
// request's line when the request ends (for a WebSocket, when it closes).
func (p *NginxProc) WaitAccessLog(t testing.TB, timeout time.Duration, match func(line string) bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		for _, l := range p.AccessLog(t) {
			if match(l) {
				return l
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("testenv: no matching access log line within %v; log:\n%s", timeout, strings.Join(p.AccessLog(t), "\n"))
			return ""
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// nginxOutput is a bytes.Buffer safe for the concurrent writes of a child's
// stdout and stderr.
type nginxOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *nginxOutput) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *nginxOutput) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
