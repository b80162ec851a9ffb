package nginx_test

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

func testRegistry() *versions.Registry {
	return versions.NewRegistry(
		versions.Version{Name: "v0", Status: versions.Retired},
		versions.Version{Name: "v1", Status: versions.Deprecated, Sunset: time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC), Codec: versions.V1{}},
		versions.Version{Name: "v2", Status: versions.Supported, Codec: versions.V1{}},
	)
}

func render(t *testing.T, cfg nginx.Config) string {
	t.Helper()
	var b bytes.Buffer
	if err := nginx.Render(&b, cfg); err != nil {
		t.Fatalf("Render: %v", err)
	}
	return b.String()
}

// block returns the text of the first "{ ... }" block whose header line
// contains header, braces balanced.
func block(t *testing.T, conf, header string) string {
	t.Helper()
	i := strings.Index(conf, header)
	if i < 0 {
		t.Fatalf("no %q in config:\n%s", header, conf)
	}
	depth := 0
	for j := i; j < len(conf); j++ {
		switch conf[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return conf[i : j+1]
			}
		}
	}
	t.Fatalf("unbalanced block %q", header)
	return ""
}

func TestRenderRoutesByVersion(t *testing.T) {
	t.Parallel()
	cfg := nginx.Config{
		Registry:      testRegistry(),
		Prefix:        "/srv/kaiwa/nginx",
		HTTPListen:    "127.0.0.1:8080",
		HTTPSListen:   "127.0.0.1:8443",
		CertFile:      "/srv/kaiwa/tls/cert.pem",
		KeyFile:       "/srv/kaiwa/tls/key.pem",
		Sockets:       nginx.DirSockets("/srv/kaiwa/run", 2),
		UpgradeRate:   50,
		UpgradeBurst:  500,
		User:          "root",
		OpenFileLimit: 100000,
	}
	conf := render(t, cfg)

	for _, v := range []string{"v1", "v2"} {
		ua := block(t, conf, "upstream kaiwa_ua_"+v+" ")
		for _, s := range []string{nginx.UASocket("/srv/kaiwa/run", v, 0), nginx.UASocket("/srv/kaiwa/run", v, 1)} {
			if !strings.Contains(ua, `server "unix:`+s+`"`) {
				t.Errorf("upstream of %s lacks UA socket %s:\n%s", v, s, ua)
			}
		}
		if !strings.Contains(ua, "zone kaiwa_ua_"+v+" ") || !strings.Contains(ua, "least_conn;") {
			t.Errorf("UA upstream of %s does not balance by shared connection counts:\n%s", v, ua)
		}
		// A socket is never marked down: WebSocket requests complete only
		// when their sessions end, so a failure would count for minutes.
		if strings.Count(ua, "max_fails=0;") != 2 || strings.Contains(ua, "fail_timeout") {
			t.Errorf("UA upstream of %s marks sockets down:\n%s", v, ua)
		}
		api := block(t, conf, "upstream kaiwa_api_"+v+" ")
		if !strings.Contains(api, `server "unix:/srv/kaiwa/run/api-`+v+`.sock"`) || !strings.Contains(api, "keepalive") {
			t.Errorf("API upstream of %s:\n%s", v, api)
		}

		ws := block(t, conf, "location = /"+v+"/ws ")
		for _, want := range []string{
			"proxy_pass http://kaiwa_ua_" + v + ";",
			"proxy_http_version 1.1;",
			"proxy_set_header Upgrade $http_upgrade;",
			"proxy_set_header Connection $connection_upgrade;",
			"proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
			"proxy_set_header X-Real-IP $remote_addr;",
			"proxy_read_timeout 3600s;",
			"proxy_send_timeout 3600s;",
			"limit_req zone=kaiwa_upgrade_" + v + " burst=500;",
			"proxy_next_upstream_tries 2;",
		} {
			if !strings.Contains(ws, want) {
				t.Errorf("ws location of %s lacks %q:\n%s", v, want, ws)
			}
		}
		// The version's zone parks upgrades; the address's refuses its
		// excess at once.
		if !strings.Contains(ws, "limit_req zone=kaiwa_upgrade_"+v+" burst=500;\n") || strings.Contains(ws, "delay=") {
			t.Errorf("ws location of %s does not park upgrades:\n%s", v, ws)
		}
		if !strings.Contains(ws, "limit_req zone=kaiwa_upgrade_ip burst=200 nodelay;") {
			t.Errorf("ws location of %s does not limit upgrades per address:\n%s", v, ws)
		}
		if !strings.Contains(conf, "limit_req_zone $kaiwa_version zone=kaiwa_upgrade_"+v+":1m rate=50r/s;") {
			t.Errorf("no upgrade zone for %s", v)
		}

		api = block(t, conf, "location /"+v+"/api/ ")
		// proxy_pass without a URI part hands the backend the original URI.
		if !strings.Contains(api, "proxy_pass http://kaiwa_api_"+v+";") {
			t.Errorf("API location of %s does not pass the full URI:\n%s", v, api)
		}
		if strings.Contains(api, "limit_req") {
			t.Errorf("API location of %s is rate limited", v)
		}
	}

	// Only the deprecated version announces its sunset.
	if api := block(t, conf, "location /v1/api/ "); !strings.Contains(api, `add_header Sunset "Sat, 01 Mar 2031 00:00:00 GMT" always;`) ||
		!strings.Contains(api, `add_header Deprecation "true" always;`) {
		t.Errorf("deprecated v1 API has no Deprecation and Sunset headers:\n%s", api)
	}
	if api := block(t, conf, "location /v2/api/ "); strings.Contains(api, "Sunset") {
		t.Errorf("supported v2 announces a sunset:\n%s", api)
	}

	// The retired version is not proxied anywhere and answers 410.
	for _, absent := range []string{"kaiwa_ua_v0", "kaiwa_api_v0", "location = /v0/ws", "location /v0/api/", "ua-v0", "api-v0"} {
		if strings.Contains(conf, absent) {
			t.Errorf("retired v0 is routed: config contains %q", absent)
		}
	}
	retired := block(t, conf, "location ^~ /v0/ ")
	if !strings.Contains(retired, `return 410 '{"error":{"code":"version_not_allowed","message":"protocol version v0 is retired"}}`) {
		t.Errorf("retired location:\n%s", retired)
	}
	if root := block(t, conf, "location / "); !strings.Contains(root, "return 404;") {
		t.Errorf("default location:\n%s", root)
	}
	// Every answer of nginx's own is JSON: each status it may produce has
	// an error page, and each page answers the API's error shape.
	pages := regexp.MustCompile(`(?m)^\s*error_page ([\d ]+) = (\S+);`).FindAllStringSubmatch(conf, -1)
	caught := map[string]string{}
	for _, m := range pages {
		for _, status := range strings.Fields(m[1]) {
			caught[status] = m[2]
		}
		target := m[2]
		if !strings.HasPrefix(target, "@") {
			target = "= " + target
		}
		loc := block(t, conf, "location "+target+" ")
		if !regexp.MustCompile(`return \d{3} '\{"error":\{"code":"[a-z_]+","message":"[^"']+"\}\}\\n';`).MatchString(loc) {
			t.Errorf("error page %s does not answer JSON:\n%s", m[2], loc)
		}
		if !strings.HasPrefix(m[2], "@") && !strings.Contains(loc, "internal;") {
			t.Errorf("error page %s is reachable from outside:\n%s", m[2], loc)
		}
	}
	for _, status := range []string{"400", "404", "413", "414", "429", "494", "500", "501", "502", "503", "504", "505"} {
		if caught[status] == "" {
			t.Errorf("nginx answers %s with its own HTML page", status)
		}
	}
	if !strings.Contains(conf, "default_type application/json;") {
		t.Error("nginx's own answers are not typed application/json")
	}

	// Listeners and TLS.
	for _, want := range []string{
		"listen 127.0.0.1:8080 backlog=4096;",
		"listen 127.0.0.1:8443 ssl backlog=4096;",
		"ssl_protocols TLSv1.2 TLSv1.3;",
		"ssl_buffer_size 4k;",
		`ssl_certificate "/srv/kaiwa/tls/cert.pem";`,
		`ssl_certificate_key "/srv/kaiwa/tls/key.pem";`,
		`user "root";`,
		"worker_connections 20000;",
		"worker_rlimit_nofile 40000;",
		"client_header_timeout 10s;",
		"keepalive_timeout 65s;",
		"send_timeout 30s;",
		"client_max_body_size 4194304;",
		"limit_req_status 429;",
		"limit_req_zone $binary_remote_addr zone=kaiwa_upgrade_ip:32m rate=20r/s;",
		"limit_conn_zone $binary_remote_addr zone=kaiwa_conn_ip:32m;",
		"limit_conn_status 429;",
		"limit_conn kaiwa_conn_ip 1000;",
		`pid "/srv/kaiwa/nginx/nginx.pid";`,
		`error_log "/srv/kaiwa/nginx/error.log" warn;`,
		`access_log "/srv/kaiwa/nginx/access.log" kaiwa;`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?m)^\s*daemon\b`).MatchString(conf) {
		t.Error("config sets daemon; it is given with -g at start")
	}
	temps := regexp.MustCompile(`(?m)^\s*(\w+_temp_path) "([^"]+)";`).FindAllStringSubmatch(conf, -1)
	if len(temps) != 5 {
		t.Errorf("want 5 temp paths, got %d", len(temps))
	}
	for _, m := range temps {
		if !strings.HasPrefix(m[2], "/srv/kaiwa/nginx/") {
			t.Errorf("%s is outside the prefix: %s", m[1], m[2])
		}
	}
}

func TestRenderAccessLogFormat(t *testing.T) {
	t.Parallel()
	conf := render(t, nginx.Config{Registry: testRegistry(), Prefix: "/p", Sockets: nginx.DirSockets("/r", 1)})
	i := strings.Index(conf, "log_format kaiwa escape=json")
	if i < 0 {
		t.Fatal("no JSON log format")
	}
	format := conf[i : i+strings.Index(conf[i:], ";")]
	for _, want := range []string{"$time_iso8601", "$remote_addr", "$request_method", `"uri":"$uri"`, "$status",
		"$body_bytes_sent", "$request_time", "$upstream_addr", "$upstream_status", "$upstream_response_time",
		`"version":"$kaiwa_version"`, "$http_user_agent"} {
		if !strings.Contains(format, want) {
			t.Errorf("log format lacks %s", want)
		}
	}
	for _, never := range []string{"$http_authorization", "$request_uri", "$args", "$query_string", "$request ", "$request\"", "$http_cookie", "$http_referer", "$arg_"} {
		if strings.Contains(format, never) {
			t.Errorf("log format contains %s", never)
		}
	}
	if strings.Count(conf, "access_log ") != 1 || !strings.Contains(conf, `access_log "/p/access.log" kaiwa;`) {
		t.Error("not exactly one access log with the kaiwa format")
	}
	// The version map knows every version, retired ones included.
	m := block(t, conf, "map $uri $kaiwa_version ")
	for _, v := range []string{"v0", "v1", "v2"} {
		if !strings.Contains(m, `"~^/`+v+`/" "`+v+`";`) {
			t.Errorf("version map lacks %s:\n%s", v, m)
		}
	}
}

func TestRenderPlainHTTPOnly(t *testing.T) {
	t.Parallel()
	conf := render(t, nginx.Config{Registry: versions.Default(), Prefix: "/p", Sockets: nginx.DirSockets("/r", 1)})
	if strings.Contains(conf, "ssl") {
		t.Error("TLS configured without an HTTPS listener")
	}
	if !strings.Contains(conf, "listen "+nginx.DefaultHTTPListen+" ") {
		t.Error("no default HTTP listener")
	}
	if strings.Contains(conf, "user ") {
		t.Error("user directive without a user")
	}
}

func TestRenderPerIPLimits(t *testing.T) {
	t.Parallel()
	cfg := nginx.Config{Registry: versions.Default(), Prefix: "/p", Sockets: nginx.DirSockets("/r", 1),
		PerIPConns: 50, PerIPUpgradeRate: 5, PerIPUpgradeBurst: 10}
	conf := render(t, cfg)
	for _, want := range []string{"rate=5r/s;", "limit_conn kaiwa_conn_ip 50;", "limit_req zone=kaiwa_upgrade_ip burst=10 nodelay;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	// Negative turns them off (behind a balancer that hides addresses).
	cfg.PerIPConns, cfg.PerIPUpgradeRate = -1, -1
	conf = render(t, cfg)
	if strings.Contains(conf, "kaiwa_conn_ip") || strings.Contains(conf, "kaiwa_upgrade_ip") {
		t.Errorf("per-address limits rendered though turned off:\n%s", conf)
	}
}

func TestRenderWithinTheOpenFileLimit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		limit               uint64
		workerConns, nofile int
	}{
		{100000, 20000, 40000},
		{30000, 20000, 30000},
		{4096, 4096, 4096},
	} {
		conf := render(t, nginx.Config{Registry: versions.Default(), Prefix: "/p", Sockets: nginx.DirSockets("/r", 1), OpenFileLimit: c.limit})
		for _, want := range []string{fmt.Sprintf("worker_connections %d;", c.workerConns), fmt.Sprintf("worker_rlimit_nofile %d;", c.nofile)} {
			if !strings.Contains(conf, want) {
				t.Errorf("hard limit %d: config lacks %q", c.limit, want)
			}
		}
	}
}

func TestRenderRejectsBadConfig(t *testing.T) {
	t.Parallel()
	good := nginx.Config{Registry: testRegistry(), Prefix: "/p", Sockets: nginx.DirSockets("/r", 1)}
	cases := map[string]func(c *nginx.Config){
		"no registry":     func(c *nginx.Config) { c.Registry = nil },
		"no sockets":      func(c *nginx.Config) { c.Sockets = nil },
		"relative prefix": func(c *nginx.Config) { c.Prefix = "var/nginx" },
		"quote in path":   func(c *nginx.Config) { c.AccessLog = `/p/a".log` },
		"semicolon":       func(c *nginx.Config) { c.Sockets = nginx.DirSockets("/r;evil", 1) },
		"variable":        func(c *nginx.Config) { c.Prefix = "/p/$host" },
		"newline":         func(c *nginx.Config) { c.User = "root\nevil" },
		"TLS without key": func(c *nginx.Config) { c.HTTPSListen = "127.0.0.1:8443" },
		"bad listen":      func(c *nginx.Config) { c.HTTPListen = "8080" },
		"path in version": func(c *nginx.Config) {
			c.Registry = versions.NewRegistry(versions.Version{Name: "v1/../x", Status: versions.Supported})
		},
		"neither UA nor API sockets": func(c *nginx.Config) {
			c.Sockets = func(string) ([]string, string) { return nil, "" }
		},
		"relative demo dir": func(c *nginx.Config) { c.DemoDir = "sdk/js/demo" },
		"quote in demo dir": func(c *nginx.Config) { c.DemoDir = `/srv/"demo` },
		"a version named demo": func(c *nginx.Config) {
			c.DemoDir = "/srv/demo"
			c.Registry = versions.NewRegistry(versions.Version{Name: "demo", Status: versions.Supported, Codec: versions.V1{}})
		},
	}
	for name, mutate := range cases {
		c := good
		mutate(&c)
		var b bytes.Buffer
		if err := nginx.Render(&b, c); err == nil {
			t.Errorf("%s: Render succeeded", name)
		} else if b.Len() != 0 {
			t.Errorf("%s: Render wrote %d bytes before failing", name, b.Len())
		}
	}
}

func TestRenderDemoDir(t *testing.T) {
	t.Parallel()
	cfg := nginx.Config{Registry: testRegistry(), Prefix: "/p", Sockets: nginx.DirSockets("/r", 1)}
	if conf := render(t, cfg); strings.Contains(conf, "/demo") {
		t.Errorf("no DemoDir, yet the config has /demo:\n%s", conf)
	}
	cfg.DemoDir = "/srv/kaiwa/demo/"
	loc := block(t, render(t, cfg), "location ^~ /demo/ {")
	for _, want := range []string{`alias "/srv/kaiwa/demo/";`, "index index.html;", "text/javascript js mjs;", `add_header Cache-Control "no-cache" always;`} {
		if !strings.Contains(loc, want) {
			t.Errorf("the /demo/ location lacks %q:\n%s", want, loc)
		}
	}
}

func TestSocketNames(t *testing.T) {
	t.Parallel()
	if got := nginx.UASocket("/run/kaiwa", "v2", 1); got != "/run/kaiwa/ua-v2-1.sock" {
		t.Errorf("UASocket = %s", got)
	}
	if got := nginx.APISocket("/run/kaiwa", "v2"); got != "/run/kaiwa/api-v2.sock" {
		t.Errorf("APISocket = %s", got)
	}
	ua, api := nginx.DirSockets("/d", 3)("v1")
	if len(ua) != 3 || ua[2] != "/d/ua-v1-2.sock" || api != "/d/api-v1.sock" {
		t.Errorf("DirSockets = %v, %s", ua, api)
	}
}

func TestRenderUpgradeRateFromCapacity(t *testing.T) {
	t.Parallel()
	// v1 has three UA processes, v2 one.
	sockets := func(v string) ([]string, string) {
		n := map[string]int{"v1": 3, "v2": 1}[v]
		ua := make([]string, n)
		for i := range ua {
			ua[i] = nginx.UASocket("/r", v, i)
		}
		return ua, nginx.APISocket("/r", v)
	}
	for _, c := range []struct {
		name                             string
		perUA, rate, burst               int
		v1Rate, v1Burst, v2Rate, v2Burst int
	}{
		{"defaults", 0, 0, 0, 3 * nginx.DefaultUAConnectRate, 30 * nginx.DefaultUAConnectRate, nginx.DefaultUAConnectRate, 10 * nginx.DefaultUAConnectRate},
		{"per UA", 500, 0, 0, 1500, 15000, 500, 5000},
		{"set outright", 500, 50, 0, 50, 500, 50, 500},
		{"queue set", 0, 0, 7, 3 * nginx.DefaultUAConnectRate, 7, nginx.DefaultUAConnectRate, 7},
	} {
		conf := render(t, nginx.Config{Registry: versions.Default(), Prefix: "/p", Sockets: sockets,
			UAConnectRate: c.perUA, UpgradeRate: c.rate, UpgradeBurst: c.burst})
		for _, want := range []string{
			fmt.Sprintf("zone=kaiwa_upgrade_v1:1m rate=%dr/s;", c.v1Rate),
			fmt.Sprintf("limit_req zone=kaiwa_upgrade_v1 burst=%d;", c.v1Burst),
			fmt.Sprintf("zone=kaiwa_upgrade_v2:1m rate=%dr/s;", c.v2Rate),
			fmt.Sprintf("limit_req zone=kaiwa_upgrade_v2 burst=%d;", c.v2Burst),
		} {
			if !strings.Contains(conf, want) {
				t.Errorf("%s: config lacks %q", c.name, want)
			}
		}
	}
}
