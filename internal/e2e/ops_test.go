package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/nginx"
)

// TestOperatorsSeeTraffic sends known traffic for one tenant and reads it
// back as an operator would: the /metrics of a UA, of the API process
// (over --metrics-listen, as Prometheus scrapes it) and of its log writer
// moved by exactly that traffic for that tenant and not at all for
// another; and GET /v1/api/stats, gathered over the bus from every
// process, reports the tenant's sessions by version, its messages and
// deliveries, and the round-trip time of a v2 client behind a delaying
// proxy within 20 ms of the delay, while the other tenant's stats show
// none of it.
func TestOperatorsSeeTraffic(t *testing.T) {
	metricsAddr := testenv.FreeAddr(t)
	c := newCluster(t, clusterOpts{apiArgs: func(v string) []string {
		if v == "v1" { // the API process with the log writer
			return []string{"--metrics-listen", metricsAddr}
		}
		return nil
	}})
	acme, other := c.tenant("acme"), c.tenant("other")
	for _, key := range []string{acme, other} {
		c.must(201, "PUT", "/channels/world", key, map[string]any{"kind": "open"})
	}
	alice := c.dial(c.token(acme, "alice", []string{"world"}, []string{"world"}))
	bob := c.dial(c.token(acme, "bob", []string{"world"}, []string{"world"}))
	carol := c.dial(c.token(other, "carol", []string{"world"}, []string{"world"}))
	ctx := ctxT(t, time.Minute)
	for _, conn := range []*client.Conn{alice, bob, carol} {
		if err := conn.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	// A v2 client of acme far away: every byte waits delay each way.
	const delay = 50 * time.Millisecond
	p := testenv.NewProxy(t, strings.TrimPrefix(c.nginx.HTTPSURL, "https://"))
	p.SetDelay(delay)
	far, err := client.Dial(ctx, "wss://"+p.Addr()+"/v2/ws", client.Options{Token: c.token(acme, "far", nil, nil), TLSConfig: c.tls})
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	// A few pings a second apart: the stats take each session's RTT at
	// most once a second.
	for i := range 4 {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond)
		}
		if err := far.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}

	scrape := func() map[string]float64 {
		all := map[string]float64{}
		for _, v := range []string{"v1", "v2"} {
			for i := range perVersion {
				addSamples(all, "ua", scrapeUnix(t, nginx.UASocket(c.socket, v, i)))
			}
		}
		addSamples(all, "api", scrapeURL(t, "http://"+metricsAddr+"/metrics"))
		return all
	}
	before := scrape()
	// One refused say: an error by code for the dashboard.
	if _, err := alice.Say(ctx, "nowhere", "lost", nil); err == nil {
		t.Fatal("a say to a channel not joined was accepted")
	}
	const n = 5
	for i := range n {
		if _, err := alice.Say(ctx, "world", fmt.Sprintf("hello %d", i), nil); err != nil {
			t.Fatal(err)
		}
		c.must(201, "POST", "/channels/world/messages", acme, map[string]any{"text": fmt.Sprintf("system %d", i)})
	}
	// Each message reaches alice and bob: 4n deliveries; the log writer
	// commits 2n messages.
	want := map[string]float64{
		`ua kaiwa_ua_published_total{tenant="acme"}`:                                                     n,
		`ua kaiwa_bus_published_total{tenant="acme"}`:                                                    n,
		`ua kaiwa_ua_deliveries_total{tenant="acme"}`:                                                    4 * n,
		`api kaiwa_bus_published_total{tenant="acme"}`:                                                   n,
		`api kaiwa_api_tenant_requests_total{tenant="acme"}`:                                             n,
		`api kaiwa_logwriter_written_total{log="messages",tenant="acme"}`:                                2 * n,
		`ua kaiwa_ua_published_total{tenant="other"}`:                                                    0,
		`ua kaiwa_ua_deliveries_total{tenant="other"}`:                                                   0,
		`api kaiwa_bus_published_total{tenant="other"}`:                                                  0,
		`api kaiwa_api_tenant_requests_total{tenant="other"}`:                                            0,
		`api kaiwa_logwriter_written_total{log="messages",tenant="other"}`:                               0,
		`api kaiwa_api_requests_total{method="POST",route="/v1/api/channels/:ch/messages",status="201"}`: n,
	}
	var moved map[string]float64
	testenv.Eventually(t, "the metrics to move by the traffic", 10*time.Second, func() bool {
		after := scrape()
		moved = map[string]float64{}
		ok := true
		for k, w := range want {
			moved[k] = after[k] - before[k]
			ok = ok && moved[k] == w
		}
		return ok
	})
	for k, w := range want {
		if moved[k] != w {
			t.Errorf("%s moved by %v, want %v", k, moved[k], w)
		}
	}
	after := scrape()
	for _, name := range []string{`ua kaiwa_nats_connected`, `api kaiwa_nats_connected`} {
		if after[name] == 0 {
			t.Errorf("%s = 0, want every process connected", name)
		}
	}
	if after[`ua kaiwa_ua_tenant_sessions{tenant="acme",version="v1"}`] != 2 || after[`ua kaiwa_ua_tenant_sessions{tenant="acme",version="v2"}`] != 1 {
		t.Errorf("acme's sessions by version in the metrics: %v", after)
	}

	// GET /stats, for acme, then for other.
	var st kaiwa.TenantStats
	testenv.Eventually(t, "acme's stats", 10*time.Second, func() bool {
		st = stats(t, c, acme)
		return st.LogWriter.Written.LastMinute == 2*n && st.RTT.Samples >= 3
	})
	t.Logf("acme's stats: %+v", st)
	if st.Tenant != "acme" || st.Processes["ua"] != 2*perVersion || st.Processes["api"] != 2 {
		t.Errorf("stats answered by %v for %q, want %d UAs and 2 APIs", st.Processes, st.Tenant, 2*perVersion)
	}
	if st.Sessions.Total != 3 || st.Sessions.ByVersion["v1"] != 2 || st.Sessions.ByVersion["v2"] != 1 {
		t.Errorf("acme's sessions = %+v, want v1 2, v2 1", st.Sessions)
	}
	if st.Messages.LastMinute != 2*n || st.Messages.LastHour != 2*n {
		t.Errorf("acme's messages = %+v, want %d", st.Messages, 2*n)
	}
	if st.Deliveries.LastMinute != 4*n {
		t.Errorf("acme's deliveries = %+v, want %d", st.Deliveries, 4*n)
	}
	if rtt := float64(2 * delay / time.Millisecond); math.Abs(st.RTT.P50-rtt) > 20 || st.RTT.P90 < st.RTT.P50 || st.RTT.P99 < st.RTT.P90 {
		t.Errorf("acme's RTT = %+v, want a p50 within 20 ms of %v ms", st.RTT, rtt)
	}
	if st.LogWriter.LagMS <= 0 {
		t.Errorf("acme's log writer lag = %d ms", st.LogWriter.LagMS)
	}
	o := stats(t, c, other)
	if o.Tenant != "other" || o.Sessions.Total != 1 || o.Sessions.ByVersion["v1"] != 1 || o.Messages.LastHour != 0 ||
		o.Deliveries.LastHour != 0 || o.RTT.Samples != 0 || o.LogWriter.Written.LastHour != 0 {
		t.Errorf("other's stats show acme's traffic: %+v", o)
	}
	for _, key := range []string{"", "acme:forged", "nobody:" + strings.Repeat("x", 40)} {
		if status, m := c.api("GET", "/stats", key, nil); status != 401 {
			t.Errorf("GET /stats with key %q = %d %v, want 401", key, status, m)
		}
	}
	checkDashboard(t, scrape())
}

// checkDashboard checks that every metric the Grafana dashboard
// (deploy/grafana/kaiwa.json) and the Prometheus example query is one the
// processes export, from their samples after the test's traffic.
func checkDashboard(t *testing.T, samples map[string]float64) {
	t.Helper()
	exported := map[string]bool{}
	for k := range samples {
		_, series, _ := strings.Cut(k, " ")
		name, _, _ := strings.Cut(series, "{")
		exported[name] = true
	}
	data, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "deploy", "grafana", "kaiwa.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("deploy/grafana/kaiwa.json: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	metric := regexp.MustCompile(`\bkaiwa_[a-z0-9_]+`)
	n := 0
	for _, e := range exprs {
		for _, m := range metric.FindAllString(e, -1) {
			n++
			if !exported[m] {
				t.Errorf("the dashboard queries %s, which no process exports (in %s)", m, e)
			}
		}
	}
	if n < 10 {
		t.Errorf("the dashboard queries %d Kaiwa metrics", n)
	}
}

// stats reads a tenant's GET /v1/api/stats.
func stats(t *testing.T, c *cluster, key string) kaiwa.TenantStats {
	t.Helper()
	m := c.must(200, "GET", "/stats", key, nil)
	data, _ := json.Marshal(m)
	var st kaiwa.TenantStats
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// addSamples adds the samples of a Prometheus text exposition to all,
// each keyed "who NAME{LABELS}".
func addSamples(all map[string]float64, who, text string) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			all[who+" "+line[:i]] += v
		}
	}
}

// scrapeUnix reads /metrics from a process's unix socket.
func scrapeUnix(t *testing.T, sock string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 5 * time.Second}
	return scrapeWith(t, hc, "http://kaiwa/metrics")
}

// scrapeURL reads /metrics over TCP.
func scrapeURL(t *testing.T, url string) string {
	t.Helper()
	return scrapeWith(t, &http.Client{Timeout: 5 * time.Second}, url)
}

func scrapeWith(t *testing.T, hc *http.Client, url string) string {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %d", url, resp.StatusCode)
	}
	return b.String()
}
