package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// TestConsole drives the web console through nginx in headless Chromium
// (testdata/console.mjs): an operator of acme logs in with an API key,
// finds on the Logs page the message a WebSocket client just sent, bans
// its sender from the user's page (the client's session is closed with
// 4003), switches to Japanese, turns the NG policy to mask, adds ばか and
// sees the try box mask a half-width ﾊﾞｶ, and creates a channel; an
// operator of rival then sees none of acme's data on any page. The
// screenshots are kept in the test artifacts directory
// (testenv.ArtifactDir: $KAIWA_TEST_ARTIFACTS/console, or
// var/test-artifacts/console). Then bad requests, sent as a browser would,
// are refused with a clear error and change nothing.
func TestConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a stack and Chromium")
	}
	node, sdk := testenv.JSSDK(t, "playwright-core")
	chromium := testenv.Chromium(t)
	c := newCluster(t, clusterOpts{})
	acme, rival := c.tenant("acme"), c.tenant("rival")
	c.must(201, "PUT", "/channels/world", acme, map[string]any{"kind": "open", "title": "ワールド"})
	c.must(201, "PUT", "/channels/rivalry", rival, map[string]any{"kind": "open"})
	alice := c.dial(c.token(acme, "alice", []string{"world"}, []string{"world"}))
	ctx := ctxT(t, 2*time.Minute)
	if err := alice.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	text := "こんにちは、世界 " + time.Now().Format("150405.000")
	if _, err := alice.Say(ctx, "world", text, nil); err != nil {
		t.Fatal(err)
	}
	carol := c.dial(c.token(rival, "carol", []string{"rivalry"}, []string{"rivalry"}))
	if err := carol.Join(ctx, "rivalry"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Say(ctx, "rivalry", "rival's own words", nil); err != nil {
		t.Fatal(err)
	}
	// The log writer has both before the browser looks.
	testenv.Eventually(t, "the messages in the log", 10*time.Second, func() bool {
		return len(c.logged(acme, "world")) == 1 && len(c.logged(rival, "rivalry")) == 1
	})

	shots := testenv.ArtifactDir(t, "console")
	secrets, _ := json.Marshal([]string{text, "ワールド", "world", "ばか", "spam", "acme"})
	run, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(run, node, filepath.Join(testenv.ModuleRoot(t), "internal", "e2e", "testdata", "console.mjs"))
	cmd.Env = append(os.Environ(),
		"KAIWA_CONSOLE_URL="+c.nginx.HTTPSURL+"/console/",
		"KAIWA_KEY_A="+acme, "KAIWA_KEY_B="+rival,
		"KAIWA_TEXT="+text, "KAIWA_USER=alice",
		"KAIWA_SECRETS="+string(secrets),
		"KAIWA_SHOTS="+shots, "KAIWA_SDK_DIR="+sdk, "KAIWA_CHROMIUM="+chromium,
	)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("node testdata/console.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the console test failed: %v", err)
	}
	t.Logf("screenshots in %s", shots)

	// The ban closed alice's session (4003), through the core: the event
	// names the console and the key.
	select {
	case <-alice.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("alice's session is still open after the ban")
	}
	if code, reason, _ := alice.CloseStatus(); code != 4003 || !strings.Contains(reason, "banned") {
		t.Errorf("alice closed with %d %q, want 4003 banned", code, reason)
	}
	testenv.Eventually(t, "the ban in the event log", 10*time.Second, func() bool {
		m := c.must(200, "GET", "/events?type=ban&user=alice", acme, nil)
		evs, _ := m["events"].([]any)
		if len(evs) != 1 {
			return false
		}
		d, _ := evs[0].(map[string]any)["detail"].(map[string]any)
		actor, _ := d["actor"].(string)
		return strings.HasPrefix(actor, "console:") && d["reason"] == "spam / スパム"
	})
	ng := c.must(200, "GET", "/ngwords", acme, nil)
	if ng["policy"] != "mask" || !strings.Contains(strings.Join(toStrings(ng["words"]), ","), "ばか") {
		t.Errorf("acme's NG list after the console: %v", ng)
	}
	if ng := c.must(200, "GET", "/ngwords", rival, nil); len(toStrings(ng["words"])) != 0 {
		t.Errorf("rival's NG list changed: %v", ng)
	}

	t.Run("bad requests", func(t *testing.T) { consoleBadRequests(t, c, acme, rival) })
}

// consoleBadRequests sends what a careless or hostile browser would and
// checks that each is refused with a clear error, changing nothing.
func consoleBadRequests(t *testing.T, c *cluster, acme, rival string) {
	base := c.nginx.HTTPSURL + "/console"
	a := consoleLogin(t, c, acme)
	b := consoleLogin(t, c, rival)
	noCookie := consoleClient(t, c)

	// Pages without a session go to the login page; changes are refused.
	if resp := consoleDo(t, noCookie, "GET", base+"/live", nil, ""); resp.status != 303 || !strings.HasSuffix(resp.location, "/console/login") {
		t.Errorf("GET /console/live without a session: %d %s", resp.status, resp.location)
	}
	if resp := consoleDo(t, noCookie, "POST", base+"/users/bob/sanction", url.Values{"kind": {"ban"}}, ""); resp.status != 401 {
		t.Errorf("a ban without a session: %d", resp.status)
	}
	// A forged cookie: acme's session renamed to rival's tenant.
	forged := forge(t, a.session, "rival")
	if resp := consoleDo(t, noCookie, "GET", base+"/logs", nil, "kaiwa_console="+forged); resp.status != 401 || !strings.Contains(resp.body, "unauthorized") {
		t.Errorf("a forged session cookie: %d %s", resp.status, resp.body)
	}
	// Changes without the CSRF token, with another session's, or from
	// another origin.
	for name, req := range map[string]struct {
		client *consoleSession
		form   url.Values
		origin string
	}{
		"no token":       {a, url.Values{"kind": {"ban"}}, ""},
		"rival's token":  {a, url.Values{"kind": {"ban"}, "csrf": {b.csrf}}, ""},
		"a token of B":   {b, url.Values{"kind": {"ban"}, "csrf": {a.csrf}}, ""},
		"another origin": {a, url.Values{"kind": {"ban"}, "csrf": {a.csrf}}, "https://evil.example"},
		"forged token":   {a, url.Values{"kind": {"ban"}, "csrf": {strings.Repeat("A", 43)}}, ""},
	} {
		resp := consoleDoOrigin(t, req.client.hc, "POST", base+"/users/bob/sanction", req.form, req.origin)
		if resp.status != 403 || !strings.Contains(resp.body, "nothing was changed") {
			t.Errorf("%s: %d %s", name, resp.status, resp.body)
		}
	}
	for _, key := range []string{acme, rival} {
		if m := c.must(200, "GET", "/users/bob/sanctions", key, nil); len(m["sanctions"].([]any)) != 0 {
			t.Errorf("a refused change banned bob: %v", m)
		}
	}
	// Huge and malformed filters.
	for _, q := range []string{"user=" + strings.Repeat("x", 300), "ch=" + url.QueryEscape("no spaces"), "since=yesterday", "limit=100000"} {
		if resp := consoleDo(t, a.hc, "GET", base+"/logs?"+q, nil, ""); resp.status != 400 || !strings.Contains(resp.body, "bad_request") {
			t.Errorf("GET /console/logs?%.40s: %d", q, resp.status)
		}
	}
	// A wrong key at the login.
	lc := consoleClient(t, c)
	csrf := consoleCSRF(t, consoleDo(t, lc, "GET", base+"/login", nil, "").body)
	if resp := consoleDo(t, lc, "POST", base+"/login", url.Values{"key": {"acme:wrong"}, "csrf": {csrf}}, ""); resp.status != 401 {
		t.Errorf("a wrong key logs in: %d", resp.status)
	}
}

// consoleSession is a logged-in HTTP client of the console.
type consoleSession struct {
	hc      *http.Client
	csrf    string
	session string
}

type consoleResp struct {
	status         int
	body, location string
}

func consoleClient(t *testing.T, c *cluster) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: c.tls}, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// consoleLogin logs in with key and returns the session.
func consoleLogin(t *testing.T, c *cluster, key string) *consoleSession {
	t.Helper()
	base := c.nginx.HTTPSURL + "/console"
	hc := consoleClient(t, c)
	csrf := consoleCSRF(t, consoleDo(t, hc, "GET", base+"/login", nil, "").body)
	resp := consoleDo(t, hc, "POST", base+"/login", url.Values{"key": {key}, "csrf": {csrf}}, "")
	if resp.status != 303 {
		t.Fatalf("login: %d %s", resp.status, resp.body)
	}
	s := &consoleSession{hc: hc}
	u, _ := url.Parse(base + "/")
	for _, ck := range hc.Jar.Cookies(u) {
		if ck.Name == "kaiwa_console" {
			s.session = ck.Value
		}
	}
	s.csrf = consoleCSRF(t, consoleDo(t, hc, "GET", base+"/channels", nil, "").body)
	return s
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func consoleCSRF(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in %s", body)
	}
	return m[1]
}

func consoleDo(t *testing.T, hc *http.Client, method, target string, form url.Values, cookie string) consoleResp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return consoleResp{resp.StatusCode, string(data), resp.Header.Get("Location")}
}

func consoleDoOrigin(t *testing.T, hc *http.Client, method, target string, form url.Values, origin string) consoleResp {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return consoleResp{resp.StatusCode, string(data), resp.Header.Get("Location")}
}

// forge returns a session cookie whose payload names another tenant,
// with the original signature.
func forge(t *testing.T, cookie, tenant string) string {
	t.Helper()
	payload, sig, _ := strings.Cut(cookie, ".")
	data, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["t"] = tenant
	data, _ = json.Marshal(m)
	return base64.RawURLEncoding.EncodeToString(data) + "." + sig
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
