package ua_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/ua"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// TestGapInLiveDeliveryIsRepaired: while a UA's bus connection is down,
// the stream goes on storing the channel's messages (another process
// publishes them) and the UA misses their live copies. Once it is back,
// it reads what it missed from the stream, even if the channel stays
// quiet; and when the next message shows the gap first (its prev), the
// missed messages are delivered before it. A v1 session, which cannot
// see a gap, and a v2 session both get every message once, in order,
// without reconnecting.
func TestGapInLiveDeliveryIsRepaired(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.channel("world", kaiwa.ChannelOpen)
	proxy, uaBus := s.proxiedBus()
	reg := versions.Default()
	var conns []*client.Conn
	for i, name := range []string{"v1", "v2"} {
		v, _ := reg.Get(name)
		url, _ := s.startUAWith(uaBus, v, nil)
		c := dialToken(t, url, s.token(fmt.Sprintf("user%d", i), []string{"*"}, []string{"*"}))
		if err := c.Join(ctx5(t), "world"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}

	n := 0
	publish := func(count int) {
		t.Helper()
		for range count {
			n++
			if _, err := s.api.Publish(context.Background(), kaiwa.Message{
				Tenant: s.tenant, Channel: "world", Text: fmt.Sprintf("m%d", n), System: true,
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(3)
	for _, c := range conns {
		for i := 1; i <= 3; i++ {
			wantText(t, c, fmt.Sprintf("m%d", i))
		}
	}

	proxy.Cut()
	testenv.Eventually(t, "the UA's bus connection drops", 5*time.Second, func() bool { return !uaBus.Conn().IsConnected() })
	publish(20) // stored in the stream; the UA misses their live copies
	proxy.Restore()
	testenv.Eventually(t, "the UA's bus connection is back", 10*time.Second, func() bool { return uaBus.Conn().IsConnected() })
	// The channel stays quiet: the UA reads what it missed on its own.
	for _, c := range conns {
		for i := 4; i <= n; i++ {
			wantText(t, c, fmt.Sprintf("m%d", i))
		}
	}
	// Missed again, and this time the next message shows the gap.
	proxy.Cut()
	testenv.Eventually(t, "the UA's bus connection drops", 5*time.Second, func() bool { return !uaBus.Conn().IsConnected() })
	from := n + 1
	publish(5)
	proxy.Restore()
	publish(2)
	for _, c := range conns {
		var last uint64
		for i := from; i <= n; i++ {
			m := wantText(t, c, fmt.Sprintf("m%d", i))
			if c.Version() == "v2" && last != 0 && m.Prev != last {
				t.Fatalf("v2: m%d has prev %d after seq %d: a gap", i, m.Prev, last)
			}
			last = m.Seq
		}
	}
	// Nothing more: a ping's answer arrives after anything already sent.
	for _, c := range conns {
		if err := c.Ping(ctx5(t)); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-c.Events():
			t.Fatalf("%s: unexpected %s after the last message", c.Version(), ev.Raw)
		default:
		}
	}
}

// wantText reads c's next event, which must be the message with text.
func wantText(t *testing.T, c *client.Conn, text string) *client.Message {
	t.Helper()
	ev := testenv.NextEvent(t, c, "msg")
	if ev.Msg.Text != text {
		t.Fatalf("%s: got message %q, want %q", c.Version(), ev.Msg.Text, text)
	}
	return ev.Msg
}

// TestSendInDoubtNamesItsCID: a say the bus cannot confirm is answered
// unavailable with the cid it was sent with (v1 clients send none), and
// resending with that cid once the bus is back stores it once.
func TestSendInDoubtNamesItsCID(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.channel("world", kaiwa.ChannelOpen)
	proxy := testenv.NewProxy(t, s.nats[len("nats://"):])
	uaBus, err := bus.Connect(context.Background(), bus.Config{URL: "nats://" + proxy.Addr(), Name: "ua", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uaBus.Close() })
	url, _ := s.startUAWith(uaBus, versions.Default().All()[0], nil)
	c := dialToken(t, url, s.token("alice", []string{"*"}, []string{"*"}))
	if err := c.Join(ctx5(t), "world"); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	testenv.Eventually(t, "the UA's bus connection drops", 5*time.Second, func() bool { return !uaBus.Conn().IsConnected() })
	r, err := c.Request(ctx5(t), map[string]any{"op": "say", "ch": "world", "text": "in doubt"})
	testenv.WantCode(t, err, kaiwa.CodeUnavailable)
	var reply struct {
		CID string `json:"cid"`
	}
	if err := json.Unmarshal(r.Raw, &reply); err != nil || reply.CID == "" {
		t.Fatalf("unavailable reply %s names no cid", r.Raw)
	}
	proxy.Restore()
	testenv.Eventually(t, "the UA's bus connection is back", 10*time.Second, func() bool { return uaBus.Conn().IsConnected() })
	id1, _, err := c.SayCID(ctx5(t), "world", "in doubt", nil, reply.CID)
	if err != nil {
		t.Fatal(err)
	}
	id2, _, err := c.SayCID(ctx5(t), "world", "in doubt", nil, reply.CID)
	if err != nil || id2 != id1 {
		t.Fatalf("second resend = %s, %v; want %s", id2, err, id1)
	}
	hist, err := c.History(ctx5(t), "world", 10, "")
	if err != nil || len(hist) != 1 || hist[0].ID != id1 {
		t.Fatalf("history %+v, %v; want the one message %s", hist, err, id1)
	}
}

// TestResumeReplayIsBounded: one resume replays at most the per-connect
// bound over all its channels, and a user's resumes at most the
// per-minute budget; channels past a bound get their newest messages that
// fit and recovered false.
func TestResumeReplayIsBounded(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	v2, _ := versions.Default().Get("v2")
	url, _ := s.startUAWith(s.connect("ua"), v2, func(c *ua.Config) {
		c.MaxReplayPerConnect = 30
		c.MaxReplayPerUserMinute = 50
		c.RecentPerChannel = -1 // every replay reads the stream
	})
	for _, ch := range []string{"a", "b", "c"} {
		s.channel(ch, kaiwa.ChannelOpen)
		for i := range 20 {
			if _, err := s.api.Publish(context.Background(), kaiwa.Message{Tenant: s.tenant, Channel: ch, Text: fmt.Sprint(ch, i), System: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tok := s.token("alice", []string{"*"}, []string{"*"})
	type outcome struct {
		n         int
		recovered bool
	}
	resume := func() map[string]outcome {
		t.Helper()
		c, err := client.Dial(ctx5(t), url, client.Options{Token: tok, Resume: map[string]uint64{"a": 0, "b": 0, "c": 0}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got := map[string]outcome{}
		counts := map[string]int{}
		for len(got) < 3 {
			select {
			case ev := <-c.Events():
				switch ev.Op {
				case "msg":
					counts[ev.Msg.Ch]++
				case "resumed":
					got[ev.Ch] = outcome{counts[ev.Ch], ev.Recovered}
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("resumed %v so far", got)
			}
		}
		return got
	}
	first := resume()
	if want := map[string]outcome{"a": {20, true}, "b": {10, false}, "c": {0, false}}; !maps.Equal(first, want) {
		t.Errorf("first resume: %+v; want %+v", first, want)
	}
	// 30 of the 50 a minute are spent: 20 are left for the next.
	second := resume()
	if want := map[string]outcome{"a": {20, true}, "b": {0, false}, "c": {0, false}}; !maps.Equal(second, want) {
		t.Errorf("second resume: %+v; want %+v", second, want)
	}
}
