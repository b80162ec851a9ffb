package faults

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds of the soak: after the warm-up, the mean of the last third of a
// Kaiwa process's samples may exceed the mean of the first third by at
// most flatRatio, plus the metric's slack.
const (
	soakSampleEvery = 10 * time.Second
	flatRatio       = 0.20
)

// metricSlack is the absolute growth each metric is allowed on top of
// flatRatio (noise of small numbers).
var metricSlack = map[string]float64{"rss_mib": 8, "goroutines": 20, "sessions": 8, "threads": 4, "fds": 12}

// sample is one reading of one process.
type sample struct {
	at      time.Time
	pid     int
	metrics map[string]float64 // rss_mib, threads, fds, goroutines (UAs)
}

// watched is a process the soak samples, and whether its memory and
// goroutines must stay flat (Kaiwa's processes) or only its files and
// threads (NATS and MariaDB, whose memory grows with the data they keep).
type watched struct {
	name    string
	pid     func() int
	socket  string // a UA's socket, whose /metrics gives goroutines
	kaiwa   bool
	samples []sample
}

// procStatus reads VmRSS and Threads from /proc/PID/status and counts
// /proc/PID/fd.
func procStatus(pid int) (map[string]float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseFloat(fields[0], 64)
		switch k {
		case "VmRSS":
			m["rss_mib"] = n / 1024
		case "Threads":
			m["threads"] = n
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	m["fds"] = float64(len(fds))
	return m, nil
}

// uaMetrics reads go_goroutines and kaiwa_ua_sessions from a UA's
// /metrics on its socket.
func uaMetrics(sock string) (map[string]float64, error) {
	// No keep-alive: an idle connection left behind per sample would be
	// counted as the UA's own growth.
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	resp, err := hc.Get("http://ua/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	out := map[string]float64{}
	for sc.Scan() {
		for prefix, name := range map[string]string{"go_goroutines ": "goroutines", "kaiwa_ua_sessions ": "sessions"} {
			if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				out[name], _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			}
		}
	}
	if _, ok := out["goroutines"]; !ok {
		return nil, fmt.Errorf("no go_goroutines in %s's metrics", sock)
	}
	return out, nil
}

// nginxWorkers returns the pids of the nginx master's children.
func nginxWorkers(master int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", master, master))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// sampler samples every watched process until ctx ends.
type sampler struct {
	mu    sync.Mutex
	procs []*watched
	errs  []string
}

func newSampler(s *stack) *sampler {
	sm := &sampler{}
	for _, p := range s.st.Processes() {
		w := &watched{name: p.Name(), pid: p.Pid, kaiwa: true}
		if strings.HasPrefix(p.Name(), "ua-") {
			w.socket = s.st.Socket(p.Name())
		}
		sm.procs = append(sm.procs, w)
		if p.Name() == "nginx" {
			for i := range 2 {
				sm.procs = append(sm.procs, &watched{name: fmt.Sprintf("nginx-worker-%d", i), kaiwa: true, pid: func() int {
					if ws := nginxWorkers(p.Pid()); i < len(ws) {
						return ws[i]
					}
					return 0
				}})
			}
		}
	}
	sm.procs = append(sm.procs,
		&watched{name: "nats", pid: func() int {
			s.nats.mu.Lock()
			defer s.nats.mu.Unlock()
			return s.nats.cmd.Process.Pid
		}},
		&watched{name: "mariadb", pid: s.db.Pid})
	return sm
}

func (sm *sampler) run(ctx context.Context) {
	t := time.NewTicker(soakSampleEvery)
	defer t.Stop()
	for {
		sm.sampleAll()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (sm *sampler) sampleAll() {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	now := time.Now()
	for _, w := range sm.procs {
		pid := w.pid()
		if pid == 0 {
			sm.errs = append(sm.errs, fmt.Sprintf("%s not running at %s", w.name, now.Format("15:04:05")))
			continue
		}
		m, err := procStatus(pid)
		if err != nil {
			sm.errs = append(sm.errs, fmt.Sprintf("%s: %v", w.name, err))
			continue
		}
		if w.socket != "" {
			if um, err := uaMetrics(w.socket); err == nil {
				for k, v := range um {
					m[k] = v
				}
			} else {
				sm.errs = append(sm.errs, err.Error())
			}
		}
		w.samples = append(w.samples, sample{at: now, pid: pid, metrics: m})
	}
}

// flatness compares, per process and metric, the first and last thirds
// of the samples taken after warmup. It returns the summary lines and the
// broken bounds.
func (sm *sampler) flatness(warmup time.Time) (summary, broken []string) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	for _, w := range sm.procs {
		var ss []sample
		pids := map[int]bool{}
		for _, x := range w.samples {
			pids[x.pid] = true
			if x.at.After(warmup) {
				ss = append(ss, x)
			}
		}
		if len(pids) > 1 {
			broken = append(broken, fmt.Sprintf("%s changed pid during the soak (%d pids): it restarted", w.name, len(pids)))
		}
		if len(ss) < 3 {
			broken = append(broken, fmt.Sprintf("%s: only %d samples after the warm-up", w.name, len(ss)))
			continue
		}
		third := len(ss) / 3
		var parts []string
		for _, metric := range []string{"rss_mib", "goroutines", "sessions", "threads", "fds"} {
			mean := func(xs []sample) (float64, bool) {
				var sum float64
				for _, x := range xs {
					v, ok := x.metrics[metric]
					if !ok {
						return 0, false
					}
					sum += v
				}
				return sum / float64(len(xs)), true
			}
			first, ok1 := mean(ss[:third])
			last, ok2 := mean(ss[len(ss)-third:])
			if !ok1 || !ok2 {
				continue
			}
			lo, hi := ss[0].metrics[metric], ss[0].metrics[metric]
			for _, x := range ss {
				lo, hi = min(lo, x.metrics[metric]), max(hi, x.metrics[metric])
			}
			growth := 0.0
			if first > 0 {
				growth = (last/first - 1) * 100
			}
			parts = append(parts, fmt.Sprintf("%s %.1f→%.1f (%+.0f%%, range %.1f–%.1f)", metric, first, last, growth, lo, hi))
			required := w.kaiwa || metric == "fds" || metric == "threads"
			if required && last > first*(1+flatRatio)+metricSlack[metric] {
				broken = append(broken, fmt.Sprintf("%s: %s grew from %.1f to %.1f (bound: +%.0f%% +%.0f)", w.name, metric, first, last, flatRatio*100, metricSlack[metric]))
			}
		}
		summary = append(summary, fmt.Sprintf("%-15s %2d samples: %s", w.name, len(ss), strings.Join(parts, ", ")))
	}
	return summary, broken
}

// TestSoak runs churning v1 and v2 clients against one stack for
// $KAIWA_SOAK: connections open and close, members chat, join and leave a
// lobby (presence), and the API kicks and mutes them now and then. Every
// process's RSS, threads, open files (and a UA's goroutines) are sampled
// every 10 s and must stay flat after the warm-up, and nothing
// acknowledged may be lost (the rules of the package documentation).
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv(soakEnv))
	if err != nil || d <= 0 {
		t.Skip("the soak runs with make soak (" + soakEnv + "=5m or another duration)")
	}
	s := startStack(t, defaultStackConfig())
	s.waitHealthy(t, time.Minute)
	cfg := defaultRoundConfig()
	cfg.SayEvery = 1500 * time.Millisecond
	cfg.ProbeEvery = 500 * time.Millisecond
	cfg.ProbeDeletes = false // the fault suite covers it; here it would hide leaks behind log losses
	cfg.Lifetime = 20 * time.Second
	cfg.StableEvery = 4
	cfg.LobbyEvery = 5 * time.Second
	r := newRound(t, s, "soak", cfg)
	sm := newSampler(s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { sm.run(ctx) })
	began := time.Now()
	r.startTraffic()
	wg.Go(func() { moderate(ctx, r) })
	time.Sleep(d)
	cancel()
	wg.Wait()
	sm.sampleAll()

	fig := r.check(t, outage{maxDown: 10 * time.Second})
	warmup := began.Add(max(time.Minute, d/5))
	summary, broken := sm.flatness(warmup)
	fmt.Printf("\nsoak for %v: samples every %v after a warm-up to %s; bound: last third's mean ≤ first third's × %.2f + slack %v (Kaiwa's processes; NATS and MariaDB: threads and files only)\n",
		d, soakSampleEvery, warmup.Format("15:04:05"), 1+flatRatio, metricSlack)
	for _, l := range summary {
		fmt.Println("  " + l)
	}
	line := fig.line("soak")
	fmt.Println("SOAK " + line)
	if len(sm.errs) > 0 {
		t.Errorf("sampling failed %d times, first: %v", len(sm.errs), sm.errs[:min(5, len(sm.errs))])
	}
	if len(broken) > 0 {
		t.Errorf("not flat:\n  %s", strings.Join(broken, "\n  "))
	}
	if fig.failed() {
		t.Errorf("the soak breaks the rules %v:\n%s\n  %s", fig.kinds, line, strings.Join(fig.problems, "\n  "))
	}
	if os.Getenv("KAIWA_SOAK_SAMPLES") != "" {
		writeSamples(t, sm, filepath.Clean(os.Getenv("KAIWA_SOAK_SAMPLES")))
	}
}

// moderate kicks or mutes (for 2 s) a random member every 5 s, through the
// API, until ctx ends.
func moderate(ctx context.Context, r *round) {
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
		m := r.members[rand.IntN(len(r.members))]
		v := []string{"v1", "v2"}[i%2]
		began := time.Now()
		var c apiCall
		if i%2 == 0 {
			status, _, err := r.api.call(v, "POST", "/users/"+m.user+"/kick", map[string]any{"reason": "soak"})
			c = apiCall{what: "POST kick", status: status, err: err, goodFor: []int{200, 204}}
		} else {
			until := time.Now().Add(2 * time.Second).UnixMilli()
			status, _, err := r.api.call(v, "PUT", "/users/"+m.user+"/mute", map[string]any{"until": until, "reason": "soak"})
			c = apiCall{what: "PUT mute", status: status, err: err, goodFor: []int{200, 201}}
		}
		c.took, c.at = time.Since(began), began
		r.recordCall(c)
	}
}

// writeSamples writes every sample as CSV to path.
func writeSamples(t *testing.T, sm *sampler, path string) {
	t.Helper()
	sm.mu.Lock()
	defer sm.mu.Unlock()
	var b strings.Builder
	b.WriteString("time,process,pid,rss_mib,threads,fds,goroutines,sessions\n")
	for _, w := range sm.procs {
		for _, x := range w.samples {
			fmt.Fprintf(&b, "%s,%s,%d,%.1f,%.0f,%.0f,%.0f,%.0f\n", x.at.Format(time.RFC3339), w.name, x.pid,
				x.metrics["rss_mib"], x.metrics["threads"], x.metrics["fds"], x.metrics["goroutines"], x.metrics["sessions"])
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
}
