package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/nginx"
)

func TestRTTReflectsTheDelay(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	acme := c.tenant("acme")
	const delay = 60 * time.Millisecond // each way
	p := testenv.NewProxy(t, strings.TrimPrefix(c.nginx.HTTPSURL, "https://"))
	p.SetDelay(delay)
	proxy := p.Addr()
	ctx := ctxT(t, 30*time.Second)
	conn, err := client.Dial(ctx, "wss://"+proxy+"/v2/ws", client.Options{
		Token: c.token(acme, "far", nil, nil), TLSConfig: c.tls,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range 3 {
		if err := conn.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rtt, ok := conn.RTT()
	if !ok || rtt < 2*delay || rtt > 2*delay+500*time.Millisecond {
		t.Errorf("client RTT = %v (%v), want about %v", rtt, ok, 2*delay)
	}
	// The server measured it too: its per-tenant RTT histogram.
	var sum float64
	var count int
	testenv.Eventually(t, "the server's RTT observation", 5*time.Second, func() bool {
		sum, count = 0, 0
		for i := range perVersion {
			s, n := rttMetric(t, nginx.UASocket(c.socket, "v2", i), "acme")
			sum, count = sum+s, count+n
		}
		return count > 0
	})
	if avg := time.Duration(sum / float64(count) * float64(time.Second)); avg < 2*delay || avg > 2*delay+500*time.Millisecond {
		t.Errorf("server RTT = %v, want about %v", avg, 2*delay)
	}
}

// rttMetric reads kaiwa_ua_rtt_seconds' sum and count for a tenant from a
// UA's /metrics.
func rttMetric(t *testing.T, sock, tenant string) (float64, int) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://ua/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	var count int
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `tenant="`+tenant+`"`) {
			continue
		}
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "kaiwa_ua_rtt_seconds_sum"):
			sum, _ = strconv.ParseFloat(f[len(f)-1], 64)
		case strings.HasPrefix(line, "kaiwa_ua_rtt_seconds_count"):
			count, _ = strconv.Atoi(f[len(f)-1])
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return sum, count
}
