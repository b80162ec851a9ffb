package ua_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/ua"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// readyz returns the status of GET /readyz of the UA serving wsURL.
func readyz(t *testing.T, wsURL string) int {
	t.Helper()
	base, _, _ := strings.Cut(strings.Replace(wsURL, "ws://", "http://", 1)[len("http://"):], "/")
	resp, err := http.Get("http://" + base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestFencedWhileTheBusIsUnreachable: a UA whose bus stops answering (the
// network to NATS drops silently: no connection is closed) fences itself
// after FenceAfter. Its v2 session gets reconnect and its v1 session
// closing, both then close 1001; new sessions are refused with 503
// unavailable and /readyz fails. Once the bus answers again the UA
// accepts sessions, and a v2 client resuming there gets what was said
// while it was fenced.
func TestFencedWhileTheBusIsUnreachable(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.channel("world", kaiwa.ChannelOpen)
	proxy, uaBus := s.proxiedBus()
	const fenceAfter = 600 * time.Millisecond
	tune := func(c *ua.Config) { c.FenceAfter = fenceAfter; c.FenceSpread = 300 * time.Millisecond }
	reg := versions.Default()
	urls := map[string]string{}
	conns := map[string]*client.Conn{}
	for _, name := range []string{"v1", "v2"} {
		v, _ := reg.Get(name)
		urls[name], _ = s.startUAWith(uaBus, v, tune)
		c := dialToken(t, urls[name], s.token("user-"+name, []string{"*"}, []string{"*"}))
		if err := c.Join(ctx5(t), "world"); err != nil {
			t.Fatal(err)
		}
		conns[name] = c
		if got := readyz(t, urls[name]); got != http.StatusOK {
			t.Fatalf("%s: /readyz = %d before the fault", name, got)
		}
	}
	first := s.Publish("world", "before")
	for _, c := range conns {
		wantText(t, c, "before")
	}

	proxy.Freeze()
	frozen := time.Now()
	ev := testenv.NextEvent(t, conns["v2"], "reconnect")
	if took := time.Since(frozen); took < fenceAfter {
		t.Errorf("v2 told to reconnect %v after the bus froze, before FenceAfter %v", took, fenceAfter)
	}
	if ev.AfterMS < 0 || ev.AfterMS > 300 {
		t.Errorf("reconnect after_ms %d, want within FenceSpread", ev.AfterMS)
	}
	for name, c := range conns {
		ev := testenv.NextEvent(t, c, "closing")
		if ev.Closing.Code != 1001 || ev.Closing.ReconnectAfterMS > 300 {
			t.Errorf("%s: closing = %+v", name, ev.Closing)
		}
		<-c.Done()
		if code, _, _ := c.CloseStatus(); code != 1001 {
			t.Errorf("%s: close code %d", name, code)
		}
		if got := readyz(t, urls[name]); got != http.StatusServiceUnavailable {
			t.Errorf("%s: /readyz = %d while fenced", name, got)
		}
		ctx := ctx5(t)
		if _, err := client.Dial(ctx, urls[name], client.Options{Token: s.token("late", nil, nil)}); !kaiwa.IsCode(err, kaiwa.CodeUnavailable) {
			t.Errorf("%s: dial while fenced: %v, want unavailable", name, err)
		}
	}
	for i := range 3 {
		s.Publish("world", fmt.Sprintf("while fenced %d", i))
	}

	proxy.Thaw()
	for name, url := range urls {
		testenv.Eventually(t, name+" accepts sessions again", 10*time.Second, func() bool {
			return readyz(t, url) == http.StatusOK
		})
	}
	ctx := ctx5(t)
	c, err := client.Dial(ctx, urls["v2"], client.Options{
		Token: s.token("user-v2", []string{"*"}, []string{"*"}), Resume: map[string]uint64{"world": first.Seq},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i := range 3 {
		wantText(t, c, fmt.Sprintf("while fenced %d", i))
	}
}

// TestFencedWhenTheBusConnectionIsCut: the same with the connection to
// NATS closed and refused (NATS down, not silent), and sessions opened
// after the fence ends work as usual.
func TestFencedWhenTheBusConnectionIsCut(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.channel("world", kaiwa.ChannelOpen)
	proxy, uaBus := s.proxiedBus()
	url, srv := s.startUAWith(uaBus, mustVersion(t, "v2"), func(c *ua.Config) { c.FenceAfter = 400 * time.Millisecond })
	c := s.dial(url, "alice")
	proxy.Cut()
	testenv.NextEvent(t, c, "reconnect")
	<-c.Done()
	testenv.Eventually(t, "no session left", 5*time.Second, func() bool { return srv.Sessions() == 0 })
	if got := readyz(t, url); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while fenced", got)
	}
	proxy.Restore()
	testenv.Eventually(t, "ready again", 10*time.Second, func() bool { return readyz(t, url) == http.StatusOK })
	bob := s.dial(url, "bob")
	if err := bob.Join(ctx5(t), "world"); err != nil {
		t.Fatal(err)
	}
	s.Publish("world", "hello again")
	wantText(t, bob, "hello again")
}

// TestNoFenceWithoutFenceAfter: a negative FenceAfter keeps sessions
// whatever the bus does.
func TestNoFenceWithoutFenceAfter(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	proxy, uaBus := s.proxiedBus()
	url, srv := s.startUAWith(uaBus, mustVersion(t, "v2"), func(c *ua.Config) { c.FenceAfter = -1 })
	s.dial(url, "alice")
	proxy.Freeze()
	time.Sleep(700 * time.Millisecond)
	if got := readyz(t, url); got != http.StatusOK || srv.Sessions() != 1 {
		t.Errorf("/readyz = %d with %d sessions, want 200 with 1", got, srv.Sessions())
	}
	proxy.Thaw()
}

func mustVersion(t *testing.T, name string) versions.Version {
	t.Helper()
	v, ok := versions.Default().Get(name)
	if !ok {
		t.Fatalf("no version %s", name)
	}
	return v
}

// flakyReplay is a bus whose first Replay reads fail as a NATS cluster's
// do while the stream elects a new leader.
type flakyReplay struct {
	*bus.Bus
	mu    sync.Mutex
	fails int
}

func (f *flakyReplay) Replay(ctx context.Context, t kaiwa.TenantID, ch string, after uint64, max int) ([]kaiwa.Message, bool, error) {
	f.mu.Lock()
	fail := f.fails > 0
	f.fails--
	f.mu.Unlock()
	if fail {
		return nil, false, kaiwa.Errorf(kaiwa.CodeUnavailable, "message bus unavailable, try again")
	}
	return f.Bus.Replay(ctx, t, ch, after, max)
}

// TestResumeRetriesTheStream: a resume whose stream read fails for a
// moment (a client moving to this UA while NATS elects a stream leader)
// reads again and recovers everything, instead of reporting recovered
// false.
func TestResumeRetriesTheStream(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.channel("world", kaiwa.ChannelOpen)
	first := s.Publish("world", "one")
	s.Publish("world", "two")
	s.Publish("world", "three")
	fb := &flakyReplay{Bus: s.connect("ua"), fails: 3}
	url, _ := s.UAOn(fb.Bus, "v2", func(c *ua.Config) { c.Bus = fb })
	c, err := client.Dial(ctx5(t), url, client.Options{
		Token: s.token("alice", []string{"*"}, []string{"*"}), Resume: map[string]uint64{"world": first.Seq},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	wantText(t, c, "two")
	wantText(t, c, "three")
	if ev := testenv.NextEvent(t, c, "resumed"); !ev.Recovered {
		t.Errorf("resumed = %+v, want recovered", ev)
	}
}
