// Package nginx renders Kaiwa's edge configuration from the versions
// registry. nginx is the only part of Kaiwa exposed to the network: it
// terminates TLS, writes one JSON access log for every backend, enforces
// timeouts, parks bursts of WebSocket upgrades, and routes each request by
// the protocol version in its path to that version's unix sockets.
//
// # Routes
//
// For every live version v (supported or deprecated):
//
//   - /v/ws is proxied, with the WebSocket upgrade, to an upstream of the
//     version's UA sockets (least connections first);
//   - /v/api/... is proxied, full original URI included, to the version's
//     API socket; /v/api/healthz and /v/api/readyz go to that process's
//     own /healthz and /readyz, which need no key.
//
// A host that runs only UAs, or only API processes, has only those
// routes (see [Config.Sockets]); the balancer in front sends each path
// to the hosts that serve it.
//
// /healthz is nginx's own health: 200 {"status":"ok"}, no backend asked.
//
// /console/ is proxied to the API socket of the newest supported version
// (the newest live one when every one is deprecated): the tenants' web
// console, which every API process serves.
//
// With [Config.DemoDir] set, /demo/ serves the files of that directory
// (the TypeScript SDK's demo page and the built SDK it imports), as
// static files with their types and no caching.
//
// Every path of a retired version answers 410 with a version_not_allowed
// error body; every other path answers 404 with a not_found error body.
//
// # Errors
//
// Whatever nginx answers by itself has the tenant API's error shape,
// {"error":{"code":..,"message":..}}, typed application/json, never an
// HTML page: a malformed or unsupported request is 400 bad_request; a URI,
// header or body over its limit is 414, 431 or 413 too_large; a refused
// upgrade or connection is 429 rate_limited with Retry-After; a backend
// that is down, fails or times out is 503 unavailable. Answers of the
// backends pass through unchanged.
//
// # Failover
//
// No UA or API socket is ever marked down. A socket that refuses (its
// process died or is restarting) costs one failed connect, and nginx tries
// the version's next socket; when every socket refuses, the client gets
// 503 unavailable at once, and the first upgrade after any UA listens
// again reaches it. (A WebSocket request completes only when its session
// ends, so nginx's max_fails accounting would let one upgrade through per
// fail_timeout after a failure, for minutes.) A UA that refuses an
// upgrade with 503 (it is draining, or fenced because it lost the bus)
// is skipped the same way (proxy_next_upstream http_503); when every UA
// of the version refuses, the client gets the last 503, which a balancer
// in front of several hosts passes on to the next host.
//
// # Parking
//
// Upgrade requests of a version share one request-rate zone. Requests
// above the version's rate wait in nginx's queue (no nodelay) and reach
// the UA servers at that rate, so a reconnect storm is smoothed instead of
// refused; beyond the queue nginx answers 429 rate_limited.
//
// The rate comes from capacity: [Config.UAConnectRate] upgrades a second
// for each UA process behind the version (what one UA process, with the
// NATS, API and MySQL work a connection causes, takes on one core; see
// [DefaultUAConnectRate]), unless [Config.UpgradeRate] sets it outright.
// The queue holds [DefaultUpgradeQueue] worth of upgrades at that rate
// unless [Config.UpgradeBurst] sets it, so that a whole version's clients
// cut at once wait their turn rather than being refused.
//
// # Limits per client address
//
// Each client address may have [Config.PerIPConns] requests open at once
// (a WebSocket counts for its whole session) and make
// [Config.PerIPUpgradeRate] upgrades a second with bursts of
// [Config.PerIPUpgradeBurst], over every version. Beyond them nginx
// answers 429 at once: one address's excess is refused, not parked, so it
// cannot fill a version's queue or hold everyone else's place. The limits
// key on the address nginx sees; behind a balancer that hides client
// addresses, raise them or turn them off.
//
// # Logs
//
// The access log is one JSON object per line (see the "kaiwa" log_format in
// the template). It holds the path without its query string and never the
// Authorization header, cookies or referrer.
package nginx

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/kaiwa-chat/kaiwa/versions"
)

//go:embed nginx.conf.tmpl
var confTemplate string

var tmpl = template.Must(template.New("nginx.conf").Funcs(template.FuncMap{
	"q":       quote,
	"errBody": errorBody,
	"dur":     duration,
	"re":      regexp.QuoteMeta,
	"httpDay": func(t time.Time) string { return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") },
}).Parse(confTemplate))

// Defaults of the tunables of [Config].
const (
	DefaultHTTPListen  = "127.0.0.1:8080"
	DefaultHTTPSListen = "127.0.0.1:8443"
	// DefaultUAConnectRate is the upgrades a second each UA process
	// behind a version is sent. One connection costs about 1.3 ms of CPU
	// along the path (nginx's TLS handshake about 430 µs and the UA 320 on
	// the UA's host; NATS 180, the API 170 and MySQL 210 elsewhere:
	// docs/benchmarks.md), so a core per UA process takes about 1,000 a
	// second.
	DefaultUAConnectRate = 1000
	// DefaultUpgradeQueue is how long, at a version's upgrade rate, the
	// upgrades waiting in its queue take to drain: the queue holds the
	// rate times this many upgrades.
	DefaultUpgradeQueue      = 10 * time.Second
	DefaultWorkerConnections = 20000
	// DefaultPerIPConns, DefaultPerIPUpgradeRate and
	// DefaultPerIPUpgradeBurst suit players behind carrier-grade NAT, many
	// to an address: 200 of them may reconnect at once and 20 a second
	// after that, and 1000 may be connected at once, while one address
	// takes at most a hundredth of a version's upgrade rate on two UAs.
	DefaultPerIPConns        = 1000
	DefaultPerIPUpgradeRate  = 20
	DefaultPerIPUpgradeBurst = 200
	// DefaultClientMaxBodyBytes is the tenant API's largest request body
	// (apiserver.DefaultNGBodyLimit, the body of an NG-list call), so that
	// nginx never refuses what the API accepts; the API enforces its
	// smaller limits for the other calls itself.
	DefaultClientMaxBodyBytes  = 4 << 20
	DefaultClientHeaderTimeout = 10 * time.Second
	DefaultClientBodyTimeout   = 10 * time.Second
	DefaultKeepaliveTimeout    = 65 * time.Second
	DefaultSendTimeout         = 30 * time.Second
	DefaultConnectTimeout      = 5 * time.Second
	DefaultAPITimeout          = 60 * time.Second
	DefaultWSTimeout           = time.Hour
	DefaultShutdownTimeout     = 30 * time.Second
)

// Config is what the nginx configuration is rendered from. The zero value
// of a tunable means its default; Registry, Prefix and Sockets are required.
type Config struct {
	// Registry lists the versions to route: live ones are proxied, retired
	// ones answer 410.
	Registry *versions.Registry
	// Prefix is nginx's -p directory, an absolute path: the pid file, the
	// error log, the default access log and every temporary path go there,
	// so nginx needs no other writable directory.
	Prefix string
	// HTTPListen is the plain HTTP address ("127.0.0.1:8080"); empty means
	// [DefaultHTTPListen].
	HTTPListen string
	// HTTPSListen is the TLS address ("127.0.0.1:8443"). Empty means no TLS
	// listener; CertFile and KeyFile are required when it is set.
	HTTPSListen string
	// CertFile and KeyFile are the PEM certificate chain and key for TLS.
	CertFile string
	KeyFile  string
	// Sockets returns a live version's UA sockets and its API socket. A
	// host with only UAs returns no API socket (""), one with only API
	// processes no UA sockets: the routes to what is not there are left
	// out (404). [DirSockets] gives the dev stack's naming.
	Sockets func(version string) (ua []string, api string)
	// AccessLog is the JSON access log's path; empty means access.log in
	// Prefix.
	AccessLog string
	// User is the account worker processes run as, written as nginx's
	// "user" directive when not empty. A master running as root needs it
	// ("root") to reach sockets in a private directory.
	User string
	// UAConnectRate is the WebSocket upgrades per second each UA process
	// is sent: a version with n UA sockets lets n times it through. Zero
	// means [DefaultUAConnectRate].
	UAConnectRate int
	// UpgradeRate, when positive, is the upgrades per second every
	// version lets through, whatever its UA processes.
	UpgradeRate int
	// UpgradeBurst is how many upgrades above the rate wait in the queue
	// before nginx answers 429. Zero means the version's rate times
	// [DefaultUpgradeQueue].
	UpgradeBurst int
	// PerIPConns bounds the requests one client address may have open at
	// once, over every version; a WebSocket counts for its whole session.
	// Beyond it nginx answers 429. Negative means no limit.
	PerIPConns int
	// PerIPUpgradeRate is the WebSocket upgrades per second one client
	// address may make, over every version, and PerIPUpgradeBurst how many
	// above the rate pass at once. The rest are refused with 429 at once,
	// never parked, so one address cannot fill a version's queue.
	// A negative rate means no limit.
	PerIPUpgradeRate  int
	PerIPUpgradeBurst int
	// WorkerProcesses is nginx's worker count; 0 means one per core.
	WorkerProcesses int
	// WorkerConnections bounds each worker's connections (both sides of a
	// proxied connection count). The workers' open-file limit is set to
	// twice it, within OpenFileLimit.
	WorkerConnections int
	// OpenFileLimit is the hard limit on open files nginx runs under. The
	// workers' open-file limit is rendered within it and WorkerConnections
	// lowered to it, so nginx never fails to raise its limit. Zero means
	// this process's own hard limit: the one nginx inherits when this
	// process, or one like it, starts it.
	OpenFileLimit uint64
	// ClientMaxBodyBytes bounds API request bodies; it should be the API
	// server's largest body limit (see [DefaultClientMaxBodyBytes]).
	ClientMaxBodyBytes int64
	// ClientHeaderTimeout, ClientBodyTimeout, KeepaliveTimeout and
	// SendTimeout are the client-side timeouts.
	ClientHeaderTimeout time.Duration
	ClientBodyTimeout   time.Duration
	KeepaliveTimeout    time.Duration
	SendTimeout         time.Duration
	// ConnectTimeout bounds connecting to a backend socket.
	ConnectTimeout time.Duration
	// APITimeout bounds reading an API response and sending an API request.
	APITimeout time.Duration
	// WSTimeout is how long a proxied WebSocket may stay silent in one
	// direction; the UA pings far more often.
	WSTimeout time.Duration
	// ShutdownTimeout bounds how long an old worker keeps WebSockets open
	// after a reload or graceful stop.
	ShutdownTimeout time.Duration
	// DemoDir, when set, is an absolute directory served at /demo/: the
	// TypeScript SDK's demo page (sdk/js/demo, with the built SDK copied
	// into it). Empty means no /demo/ (production).
	DemoDir string
}

// UASocket is the dev stack's path of the i-th UA socket of a version.
func UASocket(dir, version string, i int) string {
	return filepath.Join(dir, "ua-"+version+"-"+strconv.Itoa(i)+".sock")
}

// APISocket is the dev stack's path of a version's API socket.
func APISocket(dir, version string) string {
	return filepath.Join(dir, "api-"+version+".sock")
}

// DirSockets returns a [Config.Sockets] that names n UA sockets per version
// and one API socket in dir, with [UASocket] and [APISocket].
func DirSockets(dir string, n int) func(version string) ([]string, string) {
	return func(v string) ([]string, string) {
		ua := make([]string, n)
		for i := range ua {
			ua[i] = UASocket(dir, v, i)
		}
		return ua, APISocket(dir, v)
	}
}

// Binary returns the nginx executable to run: $KAIWA_NGINX when set, else
// nginx on PATH, else /usr/sbin/nginx.
func Binary() (string, error) {
	if p := os.Getenv("KAIWA_NGINX"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", ErrNoBinary
}

// ErrNoBinary is returned by [Binary] when no nginx is installed.
var ErrNoBinary = errors.New("nginx: no nginx binary (set KAIWA_NGINX or install nginx)")

// ServeArgs are the arguments that run nginx in the foreground with the
// rendered configuration at conf and the prefix directory prefix.
func ServeArgs(prefix, conf string) []string {
	return []string{"-p", prefix, "-c", conf, "-e", filepath.Join(prefix, "error.log"), "-g", "daemon off;"}
}

// CheckArgs are the arguments that make nginx test the configuration
// (nginx -t) without serving.
func CheckArgs(prefix, conf string) []string {
	return append([]string{"-t", "-q"}, ServeArgs(prefix, conf)...)
}

// view is what the template sees.
type view struct {
	Config
	ErrorLog, PidFile string
	RlimitNofile      int
	Errors            []edgeError
	Live              []liveVersion
	Retired           []string
	Known             []string
	// Console is the version whose API process serves /console/: the
	// newest supported one (else the newest live one).
	Console *liveVersion
}

type liveVersion struct {
	Name   string
	UA     []string
	API    string
	Sunset time.Time
	Depr   bool
	Zone   string
	// Rate and Burst are the version's upgrade rate and queue
	// ([Config.UpgradeRate], [Config.UpgradeBurst]).
	Rate, Burst int
}

// upgradeLimits returns the upgrade rate and queue of a version served by
// n UA processes.
func upgradeLimits(c Config, n int) (rate, burst int) {
	rate = c.UpgradeRate
	if rate <= 0 {
		rate = c.UAConnectRate * max(n, 1)
	}
	burst = c.UpgradeBurst
	if burst <= 0 {
		burst = int(int64(rate) * int64(DefaultUpgradeQueue) / int64(time.Second))
	}
	return rate, burst
}

var versionName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Render writes the nginx configuration for cfg to w. It fails, writing
// nothing, when cfg is incomplete or a name or path cannot be written
// safely into the configuration.
func Render(w io.Writer, cfg Config) error {
	v, err := prepare(cfg)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		return fmt.Errorf("nginx: render: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func prepare(cfg Config) (view, error) {
	if cfg.Registry == nil {
		return view{}, errors.New("nginx: config has no registry")
	}
	if cfg.Sockets == nil {
		return view{}, errors.New("nginx: config has no sockets")
	}
	if !filepath.IsAbs(cfg.Prefix) {
		return view{}, fmt.Errorf("nginx: prefix %q is not an absolute path", cfg.Prefix)
	}
	setDefaults(&cfg)
	v := view{
		Config:       cfg,
		ErrorLog:     filepath.Join(cfg.Prefix, "error.log"),
		PidFile:      filepath.Join(cfg.Prefix, "nginx.pid"),
		RlimitNofile: int(min(2*uint64(cfg.WorkerConnections), cfg.OpenFileLimit)),
		Errors:       edgeErrors(cfg.ClientMaxBodyBytes),
	}
	paths := []string{cfg.Prefix, cfg.AccessLog}
	for _, a := range []string{cfg.HTTPListen, cfg.HTTPSListen} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return view{}, fmt.Errorf("nginx: listen address %q: %w", a, err)
		}
		paths = append(paths, a)
	}
	if cfg.HTTPSListen != "" {
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return view{}, errors.New("nginx: HTTPS listener without certificate and key")
		}
		paths = append(paths, cfg.CertFile, cfg.KeyFile)
	}
	if cfg.User != "" {
		paths = append(paths, cfg.User)
	}
	if cfg.DemoDir != "" {
		if !filepath.IsAbs(cfg.DemoDir) {
			return view{}, fmt.Errorf("nginx: demo directory %q is not an absolute path", cfg.DemoDir)
		}
		v.DemoDir = strings.TrimSuffix(cfg.DemoDir, "/")
		paths = append(paths, cfg.DemoDir)
	}
	for _, ver := range cfg.Registry.All() {
		if !versionName.MatchString(ver.Name) {
			return view{}, fmt.Errorf("nginx: version name %q is not a plain path segment", ver.Name)
		}
		if ver.Name == "demo" && cfg.DemoDir != "" {
			return view{}, errors.New(`nginx: a version named "demo" and the demo page would share /demo/`)
		}
		if ver.Name == "console" {
			return view{}, errors.New(`nginx: a version named "console" and the web console would share /console/`)
		}
		v.Known = append(v.Known, ver.Name)
		if !ver.Live() {
			v.Retired = append(v.Retired, ver.Name)
			continue
		}
		ua, api := cfg.Sockets(ver.Name)
		if len(ua) == 0 && api == "" {
			return view{}, fmt.Errorf("nginx: version %s has neither UA nor API sockets", ver.Name)
		}
		paths = append(paths, ua...)
		if api != "" {
			paths = append(paths, api)
		}
		rate, burst := upgradeLimits(cfg, len(ua))
		v.Live = append(v.Live, liveVersion{
			Name: ver.Name, UA: ua, API: api,
			Depr: ver.Status == versions.Deprecated, Sunset: ver.Sunset,
			Zone: "kaiwa_upgrade_" + ver.Name,
			Rate: rate, Burst: burst,
		})
	}
	for i := range v.Live {
		if v.Live[i].API == "" {
			continue // a UA-only host serves no console
		}
		if v.Console == nil || !v.Live[i].Depr || v.Console.Depr {
			v.Console = &v.Live[i]
		}
	}
	for _, p := range paths {
		if err := checkWord(p); err != nil {
			return view{}, err
		}
	}
	return v, nil
}

func setDefaults(c *Config) {
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	if c.HTTPListen == "" {
		c.HTTPListen = DefaultHTTPListen
	}
	if c.AccessLog == "" {
		c.AccessLog = filepath.Join(c.Prefix, "access.log")
	}
	if c.UAConnectRate <= 0 {
		c.UAConnectRate = DefaultUAConnectRate
	}
	if c.PerIPConns == 0 {
		c.PerIPConns = DefaultPerIPConns
	}
	if c.PerIPUpgradeRate == 0 {
		c.PerIPUpgradeRate = DefaultPerIPUpgradeRate
	}
	if c.PerIPUpgradeBurst <= 0 {
		c.PerIPUpgradeBurst = DefaultPerIPUpgradeBurst
	}
	if c.WorkerConnections <= 0 {
		c.WorkerConnections = DefaultWorkerConnections
	}
	if c.OpenFileLimit == 0 {
		c.OpenFileLimit = hardOpenFileLimit()
	}
	c.WorkerConnections = int(min(uint64(c.WorkerConnections), c.OpenFileLimit))
	if c.ClientMaxBodyBytes <= 0 {
		c.ClientMaxBodyBytes = DefaultClientMaxBodyBytes
	}
	def(&c.ClientHeaderTimeout, DefaultClientHeaderTimeout)
	def(&c.ClientBodyTimeout, DefaultClientBodyTimeout)
	def(&c.KeepaliveTimeout, DefaultKeepaliveTimeout)
	def(&c.SendTimeout, DefaultSendTimeout)
	def(&c.ConnectTimeout, DefaultConnectTimeout)
	def(&c.APITimeout, DefaultAPITimeout)
	def(&c.WSTimeout, DefaultWSTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
}

// hardOpenFileLimit is this process's hard limit on open files, or
// [math.MaxInt32] when there is none or it cannot be read.
func hardOpenFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max > math.MaxInt32 {
		return math.MaxInt32
	}
	return lim.Max
}

// checkWord rejects values that could break out of a quoted nginx string
// or be read as a variable.
func checkWord(s string) error {
	if s == "" || strings.ContainsAny(s, "\"'\\$;{}#") {
		return fmt.Errorf("nginx: %q cannot be written into the configuration", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("nginx: %q cannot be written into the configuration", s)
		}
	}
	return nil
}

// quote writes s as a double-quoted nginx string; [checkWord] has already
// rejected anything that would need escaping.
func quote(s string) string { return `"` + s + `"` }

// duration writes d in nginx's time syntax.
func duration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}
