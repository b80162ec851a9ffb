package faults

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fault is one fault of the suite: run drives it into the stack while the
// round's traffic goes on, and returns when the faulty part is back.
type fault struct {
	name string
	tag  string // prefix of the round's channels, users and cids
	run  func(t *testing.T, s *stack, r *round) outage
	// tune, when set, changes the round's clients for this fault.
	tune func(*roundConfig)
}

// killUA kills a UA with SIGKILL; the supervisor starts it again.
func killUA(t *testing.T, s *stack, name string) time.Time {
	t.Helper()
	s.expectStart(name)
	if err := s.st.Process(name).Kill(); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

var faultList = []fault{
	{name: "kill-one-ua", tag: "f1", run: func(t *testing.T, s *stack, r *round) outage {
		// Its clients reconnect to the other UA of v1 at once.
		at := killUA(t, s, "ua-v1-0")
		s.waitChild(t, "ua-v1-0", 30*time.Second)
		return outage{began: at, back: at, within: 5 * time.Second, maxDown: 5 * time.Second}
	}},
	{name: "kill-both-v2-uas", tag: "f2", run: func(t *testing.T, s *stack, r *round) outage {
		at := killUA(t, s, "ua-v2-0")
		time.Sleep(10 * time.Second)
		killUA(t, s, "ua-v2-1")
		back := s.waitChild(t, "ua-v2-1", 30*time.Second)
		s.waitChild(t, "ua-v2-0", 30*time.Second)
		return outage{began: at, back: back, within: 10 * time.Second}
	}},
	{name: "roll-uas", tag: "f3", run: func(t *testing.T, s *stack, r *round) outage {
		at := time.Now()
		for _, v := range []string{"v1", "v2"} {
			for _, p := range s.st.UAs(v) {
				s.expectStart(p.Name())
			}
		}
		if err := s.st.RollUAs(t.Context()); err != nil {
			t.Fatal(err)
		}
		return outage{began: at, back: time.Now(), within: 5 * time.Second, maxDown: 5 * time.Second}
	}},
	{name: "nats-kill-5s", tag: "f4", run: func(t *testing.T, s *stack, r *round) outage {
		at := time.Now()
		s.nats.kill()
		time.Sleep(5 * time.Second)
		s.nats.start(t)
		return outage{began: at, back: time.Now(), within: 10 * time.Second, busLost: at}
	}, tune: func(c *roundConfig) {
		// v1 clients have no resume: only the UA's gap repair keeps
		// them whole across a NATS restart.
		c.V1 = 100
	}},
	{name: "mariadb-freeze", tag: "f5", run: func(t *testing.T, s *stack, r *round) outage {
		// Frozen, then killed while frozen, then started again.
		at := time.Now()
		pid := s.db.Pid()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(8 * time.Second)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s.restartDB(t)
		return outage{began: at, back: time.Now(), within: 10 * time.Second}
	}},
	{name: "kill-api-logwriter", tag: "f6", run: func(t *testing.T, s *stack, r *round) outage {
		at := time.Now()
		s.expectStart("api-v1")
		if err := s.st.Process("api-v1").Kill(); err != nil {
			t.Fatal(err)
		}
		back := s.waitChild(t, "api-v1", 30*time.Second)
		return outage{began: at, back: back, within: 10 * time.Second}
	}},
	{name: "cut-clients", tag: "f7", run: func(t *testing.T, s *stack, r *round) outage {
		// Two v2 and two v1 members lose their TCP connection for 3 s.
		at := time.Now()
		cut := []*member{r.members[0], r.members[1], r.members[len(r.members)-1], r.members[len(r.members)-2]}
		for _, m := range cut {
			m.proxy.Cut()
		}
		time.Sleep(3 * time.Second)
		for _, m := range cut {
			m.proxy.Restore()
		}
		return outage{began: at, back: time.Now(), within: 5 * time.Second, maxDown: 8 * time.Second}
	}},
}

// TestFaults drives each fault into one stack while v1 and v2 clients
// chat, one fault at a time, and checks the rules of the package
// documentation after each.
func TestFaults(t *testing.T) {
	if os.Getenv(faultsEnv) == "" {
		t.Skip("the fault suite runs with make test-faults (" + faultsEnv + "=1)")
	}
	s := startStack(t, defaultStackConfig())
	only := os.Getenv("KAIWA_FAULTS_ONLY") // a comma-separated list of fault names
	var report []string
	for _, f := range faultList {
		if only != "" && !strings.Contains(","+only+",", ","+f.name+",") {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			cfg := defaultRoundConfig()
			if f.tune != nil {
				f.tune(&cfg)
			}
			s.waitHealthy(t, time.Minute)
			r := newRound(t, s, f.tag, cfg)
			r.startTraffic()
			time.Sleep(cfg.Warmup)
			o := f.run(t, s, r)
			time.Sleep(time.Until(o.back.Add(cfg.Settle)))
			fig := r.check(t, o)
			line := fig.line(f.name)
			fmt.Println("FAULT " + line)
			report = append(report, line)
			if fig.failed() {
				t.Errorf("%s breaks the rules %v:\n%s\n  %s", f.name, fig.kinds, line, strings.Join(fig.problems, "\n  "))
			}
		})
	}
	fmt.Println("\nfault suite figures:")
	for _, l := range report {
		fmt.Println("  " + l)
	}
}
