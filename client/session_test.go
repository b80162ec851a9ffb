package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/internal/teststack"
)

// proxied returns the URL of a UA of version reached through a TCP proxy
// the test can cut, and the proxy.
func proxied(t *testing.T, s *teststack.Stack, version string) (string, *testenv.Proxy) {
	t.Helper()
	url, _ := s.UA(version, nil)
	host := strings.TrimPrefix(url, "ws://")
	host = host[:strings.Index(host, "/")]
	p := testenv.NewProxy(t, host)
	return strings.Replace(url, host, p.Addr(), 1), p
}

// recorder reads a session's events on its own goroutine.
type recorder struct {
	mu     sync.Mutex
	texts  []string
	states []client.State
	ops    []string
}

func record(s *client.Session) *recorder {
	r := &recorder{}
	go func() {
		for ev := range s.Events() {
			r.mu.Lock()
			r.ops = append(r.ops, ev.Op)
			switch ev.Op {
			case "msg":
				r.texts = append(r.texts, ev.Msg.Text)
			case "state":
				r.states = append(r.states, ev.State)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) snapshot() (texts []string, states []client.State, ops []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.texts), slices.Clone(r.states), slices.Clone(r.ops)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestSessionGetsEverythingAcrossACutConnection: a session whose TCP
// connection is cut while the channel goes on reconnects by itself and
// receives every message once, in order (v2: resumed from its last seq;
// v1 misses what was said while it was away, but rejoins the channel and
// gets everything after). A say made while it is away waits, then goes
// out once.
func TestSessionGetsEverythingAcrossACutConnection(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			s := teststack.New(t)
			s.Channel("world", kaiwa.ChannelOpen)
			url, proxy := proxied(t, s, version)
			all := []string{"*"}
			ctx := ctxFor(t, 30*time.Second)
			sess, err := client.Connect(ctx, url, client.SessionOptions{
				Options:    client.Options{Token: s.Token("alice", all, all)},
				MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			rec := record(sess)
			if err := sess.Join(ctx, "world"); err != nil {
				t.Fatal(err)
			}
			var want []string
			publish := func(n int) {
				for range n {
					text := fmt.Sprint("m", len(want))
					s.Publish("world", text)
					want = append(want, text)
				}
			}
			publish(5)
			testenv.Eventually(t, "the first messages", 5*time.Second, func() bool {
				texts, _, _ := rec.snapshot()
				return len(texts) == 5
			})

			proxy.Cut()
			testenv.Eventually(t, "the session notices", 5*time.Second, func() bool { return sess.State() == client.StateReconnecting })
			said := make(chan error, 1)
			go func() {
				_, _, err := sess.Say(ctx, "world", "said while away", nil)
				said <- err
			}()
			away := len(want)
			publish(10)
			time.Sleep(100 * time.Millisecond) // a few failed attempts
			proxy.Restore()
			if err := <-said; err != nil {
				t.Fatalf("say while away: %v", err)
			}
			if version == "v1" {
				want = want[:away] // v1 has no resume: what was said meanwhile is missed
			}
			want = append(want, "said while away")
			publish(3)
			testenv.Eventually(t, "every message", 10*time.Second, func() bool {
				texts, _, _ := rec.snapshot()
				return len(texts) >= len(want)
			})
			// Nothing more (a ping's answer comes after anything sent before).
			if err := sess.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			texts, states, ops := rec.snapshot()
			if version == "v1" {
				// The say's live copy may come before or after messages
				// published around the reconnect; compare as sets.
				slices.Sort(texts)
				slices.Sort(want)
			}
			if !slices.Equal(texts, want) {
				t.Errorf("messages %q\nwant     %q", texts, want)
			}
			if !slices.Contains(states, client.StateReconnecting) || states[len(states)-1] != client.StateConnected {
				t.Errorf("states %v", states)
			}
			if version == "v2" && !slices.Contains(ops, "resumed") {
				t.Errorf("no resumed event among %v", ops)
			}
			if slices.Contains(ops, "gap") {
				t.Errorf("a gap was reported: %v", ops)
			}
		})
	}
}

// TestSessionGetsANewTokenWhenRevoked: the server closes a session whose
// tokens are revoked; with GetToken the session reconnects with a fresh
// token, without it the session ends with the close.
func TestSessionGetsANewTokenWhenRevoked(t *testing.T) {
	t.Parallel()
	s := teststack.New(t)
	url, _ := s.UA("v2", nil)
	all := []string{"*"}
	ctx := ctxFor(t, 30*time.Second)
	asked := make(chan struct{}, 4)
	renewing, err := client.Connect(ctx, url, client.SessionOptions{
		Options:    client.Options{Token: s.Token("alice", all, all)},
		MinBackoff: 20 * time.Millisecond,
		GetToken: func(context.Context) (string, error) {
			asked <- struct{}{}
			return s.Token("alice", all, all), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer renewing.Close()
	record(renewing)
	plain, err := client.Connect(ctx, url, client.SessionOptions{Options: client.Options{Token: s.Token("bob", all, all)}})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	record(plain)

	for _, user := range []string{"alice", "bob"} {
		if _, err := s.Store.RevokeTokens(ctx, s.Tenant, user); err != nil {
			t.Fatal(err)
		}
		if err := s.API.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlTokensRevoked, Tenant: s.Tenant, User: user}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("GetToken was not asked")
	}
	testenv.Eventually(t, "alice back with her new token", 10*time.Second, func() bool {
		return renewing.State() == client.StateConnected && renewing.Ping(ctx) == nil
	})
	<-plain.Done()
	var ce *client.CloseError
	if err := plain.Err(); !errors.As(err, &ce) || ce.Code != 4001 {
		t.Errorf("bob's session ended with %v, want the 4001 close", err)
	}
}

// TestSessionEndsWhenKicked: a kick (4003) ends the session with an error
// event instead of a reconnect; the game decides when to come back.
func TestSessionEndsWhenKicked(t *testing.T) {
	t.Parallel()
	s := teststack.New(t)
	url, _ := s.UA("v2", nil)
	ctx := ctxFor(t, 30*time.Second)
	sess, err := client.Connect(ctx, url, client.SessionOptions{
		Options: client.Options{Token: s.Token("alice", nil, nil)}, MinBackoff: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	rec := record(sess)
	mod := kaiwa.Moderator{Store: s.Store, Bus: s.API, Events: s.API}
	if err := mod.Kick(ctx, s.Tenant, "alice", "cheating"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sess.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the kicked session did not end")
	}
	var ce *client.CloseError
	if err := sess.Err(); !errors.As(err, &ce) || ce.Code != 4003 {
		t.Errorf("Err() = %v, want the 4003 close", err)
	}
	testenv.Eventually(t, "the closed state event", 5*time.Second, func() bool {
		_, states, _ := rec.snapshot()
		return slices.Contains(states, client.StateClosed)
	})
	if _, states, ops := rec.snapshot(); slices.Contains(states, client.StateReconnecting) || !slices.Contains(ops, "error") {
		t.Errorf("states %v, ops %v: want an error and no reconnect", states, ops)
	}
}
