package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/nats-io/nats.go"
)

func newBus(t *testing.T, url string) *Bus {
	t.Helper()
	b, err := Connect(context.Background(), Config{URL: url, Name: t.Name()})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// delivery is one thing a subscription delivered: one field set.
type delivery struct {
	Message  *kaiwa.Message
	Presence *kaiwa.Presence
	Control  *kaiwa.Control
}

// collector gathers deliveries for assertions.
type collector struct {
	mu sync.Mutex
	ds []delivery
}

func (c *collector) add(d delivery) {
	c.mu.Lock()
	c.ds = append(c.ds, d)
	c.mu.Unlock()
}

// handler returns the handler that collects into c.
func (c *collector) handler() kaiwa.Handler {
	return kaiwa.Handler{
		Message:  func(m *kaiwa.Message) { c.add(delivery{Message: m}) },
		Presence: func(p *kaiwa.Presence) { c.add(delivery{Presence: p}) },
		Control:  func(ctl *kaiwa.Control) { c.add(delivery{Control: ctl}) },
	}
}

func (c *collector) messages() []kaiwa.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []kaiwa.Message
	for _, d := range c.ds {
		if d.Message != nil {
			out = append(out, *d.Message)
		}
	}
	return out
}

func (c *collector) all() []delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ds)
}

func publish(t *testing.T, b *Bus, tenant kaiwa.TenantID, ch, text string) kaiwa.Message {
	t.Helper()
	m, err := b.Publish(context.Background(), kaiwa.Message{Tenant: tenant, Channel: ch, From: "alice", Name: "Alice", Text: text})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return m
}

func TestTokenRoundTrip(t *testing.T) {
	for _, s := range []string{"world", "a.b", "guild:12.x", "%41", "x*y>z", "tab\tspace ", "", "日本"} {
		tok := token(s)
		if strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Errorf("token(%q) = %q escapes its token", s, tok)
		}
		back, ok := untoken(tok)
		if !ok || back != s {
			t.Errorf("untoken(token(%q)) = %q, %v", s, back, ok)
		}
	}
	if _, ok := untoken("%4"); ok {
		t.Error("untoken accepted a truncated escape")
	}
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"world", "a.b.c", "%", "dm:a:b", ">"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := token(s)
		if strings.ContainsAny(tok, ".*> \t\r\n\x00") {
			t.Fatalf("token(%q) = %q escapes its token", s, tok)
		}
		back, ok := untoken(tok)
		if !ok || back != s {
			t.Fatalf("round trip of %q gave %q", s, back)
		}
	})
}

func TestDeliverySeqPrevAndIsolation(t *testing.T) {
	url := testenv.NATS(t)
	pub, ua := newBus(t, url), newBus(t, url)
	var world, other, foreign collector
	for _, s := range []struct {
		t  kaiwa.TenantID
		ch string
		c  *collector
	}{{"acme", "world.en", &world}, {"acme", "other", &other}, {"rival", "world.en", &foreign}} {
		sub, err := ua.SubscribeChannel(s.t, s.ch, s.c.handler())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	var sent []kaiwa.Message
	for i := range 5 {
		sent = append(sent, publish(t, pub, "acme", "world.en", fmt.Sprint("w", i)))
		publish(t, pub, "acme", "other", fmt.Sprint("o", i))
	}
	testenv.Eventually(t, "5 world messages", 5*time.Second, func() bool { return len(world.messages()) == 5 })
	got := world.messages()
	var prev uint64
	for i, m := range got {
		if m.Seq != sent[i].Seq || m.ID != sent[i].ID || m.ID != pub.MessageID(m.Seq) {
			t.Errorf("message %d: seq %d id %s, published seq %d id %s", i, m.Seq, m.ID, sent[i].Seq, sent[i].ID)
		}
		if m.Prev != prev {
			t.Errorf("message %d: prev %d, want %d", i, m.Prev, prev)
		}
		if m.Tenant != "acme" || m.Channel != "world.en" || m.Text != fmt.Sprint("w", i) || m.From != "alice" {
			t.Errorf("message %d decoded as %+v", i, m)
		}
		prev = m.Seq
	}
	testenv.Eventually(t, "5 other messages", 5*time.Second, func() bool { return len(other.messages()) == 5 })
	// The other tenant's subscriber gets its own tenant's message, which
	// the stream republishes after everything above: nothing else came.
	publish(t, pub, "rival", "world.en", "rival's own")
	testenv.Eventually(t, "the other tenant's own message", 5*time.Second, func() bool { return len(foreign.messages()) >= 1 })
	if got := foreign.messages(); len(got) != 1 || got[0].Text != "rival's own" {
		t.Errorf("another tenant's subscriber got %+v", got)
	}
}

func TestDirectMessagesReachBothUsers(t *testing.T) {
	url := testenv.NATS(t)
	b := newBus(t, url)
	var alice, bob, carol collector
	for u, c := range map[string]*collector{"alice": &alice, "bob": &bob, "carol": &carol} {
		sub, err := b.SubscribeUser("acme", u, c.handler())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	m := publish(t, b, "acme", kaiwa.DMChannel("bob", "alice"), "hi bob")
	testenv.Eventually(t, "dm to both", 5*time.Second, func() bool { return len(alice.messages()) == 1 && len(bob.messages()) == 1 })
	if got := bob.messages()[0]; got.Channel != "dm:alice:bob" || got.Seq != m.Seq {
		t.Errorf("bob got %+v", got)
	}
	// A message to carol, published after: the only one she gets.
	publish(t, b, "acme", kaiwa.DMChannel("carol", "alice"), "hi carol")
	testenv.Eventually(t, "carol's own message", 5*time.Second, func() bool { return len(carol.messages()) >= 1 })
	if got := carol.messages(); len(got) != 1 || got[0].Text != "hi carol" {
		t.Errorf("carol got %+v", got)
	}
}

// collectChannel subscribes a collector to channel ch of tenant tn for the
// rest of the test.
func collectChannel(t *testing.T, b *Bus, tn kaiwa.TenantID, ch string) *collector {
	t.Helper()
	c := &collector{}
	sub, err := b.SubscribeChannel(tn, ch, c.handler())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return c
}

func TestClientIDDeduplicates(t *testing.T) {
	b := newBus(t, testenv.NATS(t))
	c := collectChannel(t, b, "acme", "world")
	in := kaiwa.Message{Tenant: "acme", Channel: "world", From: "alice", Text: "once", CID: "c-1"}
	m1, err := b.Publish(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := b.Publish(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if m1.ID != m2.ID || m1.Seq != m2.Seq {
		t.Errorf("resend got id %s seq %d, first %s %d", m2.ID, m2.Seq, m1.ID, m1.Seq)
	}
	// Another user's identical cid is a different message.
	in.From = "bob"
	m3, err := b.Publish(context.Background(), in)
	if err != nil || m3.Seq == m1.Seq {
		t.Fatalf("bob's message: %+v, %v", m3, err)
	}
	// A third message, published after: the resend was not delivered.
	in.CID, in.Text = "c-2", "marker"
	publish(t, b, "acme", "world", "marker")
	testenv.Eventually(t, "the marker", 5*time.Second, func() bool { ms := c.messages(); return len(ms) > 0 && ms[len(ms)-1].Text == "marker" })
	if n := len(c.messages()); n != 3 {
		t.Errorf("%d deliveries, want 3 (the first, bob's, the marker)", n)
	}
}

func TestPublishBatch(t *testing.T) {
	b := newBus(t, testenv.NATS(t))
	c := collectChannel(t, b, "acme", "world")
	first, err := b.Publish(context.Background(), kaiwa.Message{Tenant: "acme", Channel: "world", Text: "before", CID: "b-0", System: true})
	if err != nil {
		t.Fatal(err)
	}
	batch := []kaiwa.Message{
		{Tenant: "acme", Channel: "world", Text: "one", System: true},
		{Tenant: "acme", Channel: "bad channel", Text: "refused"},
		{Tenant: "acme", Channel: "world", Text: "before again", CID: "b-0", System: true},
		{Tenant: "acme", Channel: "world", Text: "two", CID: "b-2", System: true},
	}
	out, errs := b.PublishBatch(context.Background(), batch)
	if len(out) != 4 || len(errs) != 4 {
		t.Fatalf("%d results, %d errors for 4 messages", len(out), len(errs))
	}
	if !kaiwa.IsCode(errs[1], kaiwa.CodeBadRequest) || out[1].Seq != 0 {
		t.Errorf("invalid channel: %+v, %v", out[1], errs[1])
	}
	for _, i := range []int{0, 2, 3} {
		if errs[i] != nil || out[i].Seq == 0 || out[i].ID != b.MessageID(out[i].Seq) || out[i].CID == "" || out[i].Text != batch[i].Text {
			t.Errorf("message %d: %+v, %v", i, out[i], errs[i])
		}
	}
	// A CID the stream has seen is the first message, not a new one.
	if out[2].Seq != first.Seq {
		t.Errorf("a resent cid in a batch got seq %d, the first has %d", out[2].Seq, first.Seq)
	}
	if !(first.Seq < out[0].Seq && out[0].Seq < out[3].Seq) {
		t.Errorf("seqs %d, %d, %d not in the order of the batch", first.Seq, out[0].Seq, out[3].Seq)
	}
	testenv.Eventually(t, "three deliveries", 5*time.Second, func() bool { return len(c.messages()) >= 3 })
	got := c.messages()
	if len(got) != 3 || got[1].Seq != out[0].Seq || got[2].Seq != out[3].Seq || got[2].Prev != out[0].Seq {
		t.Errorf("delivered %+v", got)
	}
	// A batch whose context has ended stores nothing it can vouch for.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, errs := b.PublishBatch(ctx, batch[:1]); !kaiwa.IsCode(errs[0], kaiwa.CodeUnavailable) {
		t.Errorf("a batch after its context ended: %v, want unavailable", errs[0])
	}
}

func TestHistoryAndReplay(t *testing.T) {
	b := newBus(t, testenv.NATS(t))
	ctx := context.Background()
	var quiet []kaiwa.Message
	for i := range 300 {
		publish(t, b, "acme", "busy", fmt.Sprint("b", i))
		if i%10 == 0 {
			quiet = append(quiet, publish(t, b, "acme", "quiet", fmt.Sprint("q", i/10)))
		}
	}
	got, err := b.History(ctx, "acme", "quiet", "", 20)
	if err != nil {
		t.Fatal(err)
	}
	if ids(got) != ids(quiet[10:]) {
		t.Errorf("history = %s, want %s", ids(got), ids(quiet[10:]))
	}
	got, err = b.History(ctx, "acme", "quiet", quiet[10].ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	if ids(got) != ids(quiet[5:10]) {
		t.Errorf("history before = %s, want %s", ids(got), ids(quiet[5:10]))
	}
	got, err = b.History(ctx, "acme", "quiet", quiet[3].ID, 50)
	if err != nil || ids(got) != ids(quiet[:3]) {
		t.Errorf("history from the start = %s, %v", ids(got), err)
	}
	if got, err := b.History(ctx, "acme", "nobody-here", "", 10); err != nil || len(got) != 0 {
		t.Errorf("history of an empty channel = %v, %v", got, err)
	}
	if got, err := b.History(ctx, "other-tenant", "quiet", "", 10); err != nil || len(got) != 0 {
		t.Errorf("history of another tenant's channel = %v, %v", got, err)
	}
	if _, err := b.History(ctx, "acme", "quiet", "nonsense", 10); kaiwa.ErrorCode(err) != kaiwa.CodeBadRequest {
		t.Errorf("history before a bad id: %v", err)
	}
	rep, complete, err := b.Replay(ctx, "acme", "quiet", quiet[25].Seq, 100)
	if err != nil || !complete || ids(rep) != ids(quiet[26:]) || rep[0].Prev != quiet[25].Seq {
		t.Errorf("replay = %s, %v, %v; want %s", ids(rep), complete, err, ids(quiet[26:]))
	}
	rep, complete, err = b.Replay(ctx, "acme", "quiet", quiet[10].Seq, 5)
	if err != nil || complete || ids(rep) != ids(quiet[25:]) {
		t.Errorf("truncated replay = %s, %v, %v; want the newest 5 and not recovered", ids(rep), complete, err)
	}

	if last, err := b.LastSeq(ctx, "acme", "quiet"); err != nil || last != quiet[len(quiet)-1].Seq {
		t.Errorf("last seq = %d, %v; want %d", last, err, quiet[len(quiet)-1].Seq)
	}
	if last, err := b.LastSeq(ctx, "acme", "nobody-here"); err != nil || last != 0 {
		t.Errorf("last seq of an empty channel = %d, %v", last, err)
	}

	// Missed: the first max between two seqs, oldest first, prev chained.
	miss, complete, err := b.Missed(ctx, "acme", "quiet", quiet[3].Seq, quiet[9].Seq, 100)
	if err != nil || !complete || ids(miss) != ids(quiet[4:9]) || miss[0].Prev != quiet[3].Seq || miss[1].Prev != quiet[4].Seq {
		t.Errorf("missed = %s, %v, %v; want %s", ids(miss), complete, err, ids(quiet[4:9]))
	}
	miss, complete, err = b.Missed(ctx, "acme", "quiet", quiet[3].Seq, quiet[9].Seq, 2)
	if err != nil || complete || ids(miss) != ids(quiet[4:6]) {
		t.Errorf("missed, first 2 = %s, %v, %v; want %s and more", ids(miss), complete, err, ids(quiet[4:6]))
	}
	miss, complete, err = b.Missed(ctx, "acme", "quiet", quiet[27].Seq, 0, 100)
	if err != nil || !complete || ids(miss) != ids(quiet[28:]) {
		t.Errorf("missed to the newest = %s, %v, %v; want %s", ids(miss), complete, err, ids(quiet[28:]))
	}
	if miss, complete, err := b.Missed(ctx, "other-tenant", "quiet", 0, 0, 100); err != nil || !complete || len(miss) != 0 {
		t.Errorf("missed of another tenant's channel = %s, %v, %v", ids(miss), complete, err)
	}
}

func ids(ms []kaiwa.Message) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.ID+":"+m.Text)
	}
	return strings.Join(s, ",")
}

func TestInboxAndDeletion(t *testing.T) {
	b := newBus(t, testenv.NATS(t))
	ctx := context.Background()
	var bob, world collector
	s1, _ := b.SubscribeUser("acme", "bob", bob.handler())
	s2, _ := b.SubscribeChannel("acme", "world", world.handler())
	defer s1.Unsubscribe()
	defer s2.Unsubscribe()
	in, err := b.Publish(ctx, kaiwa.Message{Tenant: "acme", Channel: kaiwa.Inbox("bob"), Text: "you won", System: true})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "inbox delivery", 5*time.Second, func() bool { return len(bob.messages()) == 1 })
	if m := bob.messages()[0]; m.Channel != "@bob" || m.ID != in.ID {
		t.Errorf("inbox delivered %+v", m)
	}
	w := publish(t, b, "acme", "world", "oops")
	// Deleting needs the right tenant and channel.
	if err := b.DeleteMessage(ctx, "acme", "other", w.ID); kaiwa.ErrorCode(err) != kaiwa.CodeNotFound {
		t.Errorf("delete under another channel: %v", err)
	}
	if err := b.DeleteMessage(ctx, "rival", "world", w.ID); kaiwa.ErrorCode(err) != kaiwa.CodeNotFound {
		t.Errorf("delete under another tenant: %v", err)
	}
	if err := b.DeleteMessage(ctx, "acme", "world", w.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteMessage(ctx, "acme", "world", w.ID); kaiwa.ErrorCode(err) != kaiwa.CodeNotFound {
		t.Errorf("second delete: %v", err)
	}
	if h, err := b.History(ctx, "acme", "world", "", 10); err != nil || len(h) != 0 {
		t.Errorf("history after delete = %v, %v", h, err)
	}
	// A deleted direct message is announced to both users' subjects.
	var alice collector
	s3, _ := b.SubscribeUser("acme", "alice", alice.handler())
	defer s3.Unsubscribe()
	if err := b.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlMessageDeleted, Tenant: "acme", Channel: "dm:alice:bob", ID: "x-1"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "deletion notices", 5*time.Second, func() bool { return len(alice.all()) == 1 && len(bob.all()) == 2 })
}

func TestControlsAndPresenceRouting(t *testing.T) {
	b := newBus(t, testenv.NATS(t))
	ctx := context.Background()
	var user, channel, tenants collector
	s1, _ := b.SubscribeUser("acme", "bob", user.handler())
	s2, _ := b.SubscribeChannel("acme", "guild.1", channel.handler())
	s3, _ := b.SubscribeTenants(tenants.handler().Control)
	defer s1.Unsubscribe()
	defer s2.Unsubscribe()
	defer s3.Unsubscribe()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlMemberAdded, Tenant: "acme", User: "bob", Channel: "guild.1"}))
	must(b.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlChannelDeleted, Tenant: "acme", Channel: "guild.1"}))
	must(b.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlSettings, Tenant: "rival"}))
	must(b.PublishPresence(ctx, kaiwa.Presence{Tenant: "acme", Channel: "guild.1", User: "carol", Name: "C", Event: "join"}))
	testenv.Eventually(t, "routed controls", 5*time.Second, func() bool {
		return len(user.all()) == 1 && len(channel.all()) == 2 && len(tenants.all()) == 1
	})
	if c := user.all()[0].Control; c == nil || c.Kind != kaiwa.ControlMemberAdded || c.Channel != "guild.1" {
		t.Errorf("user got %+v", user.all()[0])
	}
	if c := tenants.all()[0].Control; c == nil || c.Tenant != "rival" || c.Kind != kaiwa.ControlSettings {
		t.Errorf("tenants got %+v", tenants.all()[0])
	}
	if p := channel.all()[1].Presence; p == nil || p.User != "carol" || p.Tenant != "acme" {
		t.Errorf("channel got %+v", channel.all()[1])
	}
}

// TestHandlerWithoutAKindDropsIt: a kind the handler has no function for
// is dropped, and what follows it still arrives.
func TestHandlerWithoutAKindDropsIt(t *testing.T) {
	b := newBus(t, testenv.NATS(t))
	ctx := context.Background()
	controls := make(chan *kaiwa.Control, 4)
	sub, err := b.SubscribeChannel("acme", "guild.1", kaiwa.Handler{Control: func(c *kaiwa.Control) { controls <- c }})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	publish(t, b, "acme", "guild.1", "nobody reads this")
	if err := b.PublishPresence(ctx, kaiwa.Presence{Tenant: "acme", Channel: "guild.1", User: "carol", Event: "join"}); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlChannelDeleted, Tenant: "acme", Channel: "guild.1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-controls:
		if c.Kind != kaiwa.ControlChannelDeleted || c.Tenant != "acme" {
			t.Errorf("control %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the control did not arrive")
	}
}

// fakeDirectory answers from fixed data.
type fakeDirectory struct{ token string }

func (f fakeDirectory) ResolveToken(_ context.Context, tok string) (kaiwa.Identity, error) {
	if tok != f.token {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "unknown token")
	}
	return kaiwa.Identity{Tenant: "acme", User: "alice", Name: "Alice", ExpiresAt: time.Now().Add(time.Hour), Join: []string{"*"}}, nil
}
func (fakeDirectory) TenantSettings(context.Context, kaiwa.TenantID) (kaiwa.Settings, error) {
	return kaiwa.Settings{MaxTextLen: 7}, nil
}
func (fakeDirectory) Channel(_ context.Context, t kaiwa.TenantID, ch string) (kaiwa.Channel, error) {
	if ch != "world" {
		return kaiwa.Channel{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no such channel")
	}
	return kaiwa.Channel{Tenant: t, Name: ch, Kind: kaiwa.ChannelClosed}, nil
}
func (fakeDirectory) IsMember(_ context.Context, _ kaiwa.TenantID, ch, user string) (bool, error) {
	return ch == "world" && user == "alice", nil
}
func (fakeDirectory) MemberChannels(context.Context, kaiwa.TenantID, string) ([]string, error) {
	return nil, errors.New("database down")
}
func (fakeDirectory) NGList(context.Context, kaiwa.TenantID) (kaiwa.NGList, error) {
	return kaiwa.NGList{Policy: kaiwa.NGMask, Words: []string{"bad"}}, nil
}
func (fakeDirectory) Sanctions(_ context.Context, _ kaiwa.TenantID, user string) ([]kaiwa.Sanction, error) {
	if user == "mallory" {
		return []kaiwa.Sanction{{User: user, Kind: kaiwa.SanctionMute}}, nil
	}
	return nil, nil
}

func TestDirectoryOverTheBus(t *testing.T) {
	url := testenv.NATS(t)
	api, ua := newBus(t, url), newBus(t, url)
	tok := kaiwa.NewCredential("acme")
	d := ua.Directory()
	ctx := context.Background()
	if _, err := d.ResolveToken(ctx, tok); kaiwa.ErrorCode(err) != kaiwa.CodeUnavailable {
		t.Errorf("with no API server: %v", err)
	}
	srv, err := api.ServeDirectory(fakeDirectory{token: tok}, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unsubscribe()
	id, err := d.ResolveToken(ctx, tok)
	if err != nil || id.User != "alice" || id.Tenant != "acme" {
		t.Errorf("resolve = %+v, %v", id, err)
	}
	if _, err := d.ResolveToken(ctx, kaiwa.NewCredential("acme")); kaiwa.ErrorCode(err) != kaiwa.CodeUnauthorized {
		t.Errorf("unknown token: %v", err)
	}
	if _, err := d.ResolveToken(ctx, "garbage"); kaiwa.ErrorCode(err) != kaiwa.CodeUnauthorized {
		t.Errorf("malformed token: %v", err)
	}
	if st, err := d.TenantSettings(ctx, "acme"); err != nil || st.MaxTextLen != 7 || st.RateBurst != 20 {
		t.Errorf("settings = %+v, %v", st, err)
	}
	if c, err := d.Channel(ctx, "acme", "world"); err != nil || c.Kind != kaiwa.ChannelClosed || c.Tenant != "acme" {
		t.Errorf("channel = %+v, %v", c, err)
	}
	if _, err := d.Channel(ctx, "acme", "nope"); kaiwa.ErrorCode(err) != kaiwa.CodeNotFound {
		t.Errorf("missing channel: %v", err)
	}
	if ok, err := d.IsMember(ctx, "acme", "world", "alice"); err != nil || !ok {
		t.Errorf("is member = %v, %v", ok, err)
	}
	if _, err := d.MemberChannels(ctx, "acme", "alice"); kaiwa.ErrorCode(err) != kaiwa.CodeUnavailable {
		t.Errorf("internal errors must reach UAs as unavailable, got %v", err)
	}
	if l, err := d.NGList(ctx, "acme"); err != nil || l.Policy != kaiwa.NGMask || len(l.Words) != 1 {
		t.Errorf("ng list = %+v, %v", l, err)
	}
	if s, err := d.Sanctions(ctx, "acme", "mallory"); err != nil || len(s) != 1 || s[0].Tenant != "acme" {
		t.Errorf("sanctions = %+v, %v", s, err)
	}
	if err := d.Kick(ctx, "acme", "mallory", "spam"); kaiwa.ErrorCode(err) != kaiwa.CodeUnavailable {
		t.Errorf("moderation without a moderator: %v", err)
	}
}

// fakeModeration records what it is asked.
type fakeModeration struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeModeration) add(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	return nil
}

func (f *fakeModeration) Sanction(_ context.Context, s kaiwa.Sanction) error {
	return f.add(fmt.Sprintf("sanction %s %s %s until %d (%s)", s.Tenant, s.User, s.Kind, s.Until.Unix(), s.Reason))
}

func (f *fakeModeration) Lift(_ context.Context, t kaiwa.TenantID, user string, kind kaiwa.SanctionKind) error {
	if user == "nobody" {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no such sanction")
	}
	return f.add(fmt.Sprintf("lift %s %s %s", t, user, kind))
}

func (f *fakeModeration) Kick(_ context.Context, t kaiwa.TenantID, user, reason string) error {
	return f.add(fmt.Sprintf("kick %s %s (%s)", t, user, reason))
}

// TestDirectoryModerationAndSessions: moderation requests reach the
// moderator with the tenant of their subject, its refusals come back with
// their code, and a directory that cannot batch still answers sessions.
func TestDirectoryModerationAndSessions(t *testing.T) {
	url := testenv.NATS(t)
	api, ua := newBus(t, url), newBus(t, url)
	tok := kaiwa.NewCredential("acme")
	mod := &fakeModeration{}
	srv, err := api.ServeDirectory(fakeDirectory{token: tok}, mod, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unsubscribe()
	d := ua.Directory()
	ctx := context.Background()
	until := time.Unix(1_800_000_000, 0)
	if err := d.Sanction(ctx, kaiwa.Sanction{Tenant: "acme", User: "mallory", Kind: kaiwa.SanctionMute, Until: until, Reason: "ng words"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Lift(ctx, "acme", "mallory", kaiwa.SanctionBan); err != nil {
		t.Fatal(err)
	}
	if err := d.Kick(ctx, "rival", "mallory", "spam"); err != nil {
		t.Fatal(err)
	}
	if err := d.Lift(ctx, "acme", "nobody", kaiwa.SanctionMute); kaiwa.ErrorCode(err) != kaiwa.CodeNotFound {
		t.Errorf("a refused lift: %v", err)
	}
	want := []string{
		"sanction acme mallory mute until 1800000000 (ng words)",
		"lift acme mallory ban",
		"kick rival mallory (spam)",
	}
	if !slices.Equal(mod.calls, want) {
		t.Errorf("moderator got %q, want %q", mod.calls, want)
	}

	// fakeDirectory cannot batch, and its member channels fail.
	sd := d.(interface {
		ResolveSession(context.Context, string) (kaiwa.Identity, []kaiwa.Sanction, []string, error)
	})
	if _, _, _, err := sd.ResolveSession(ctx, tok); kaiwa.ErrorCode(err) != kaiwa.CodeUnavailable {
		t.Errorf("session of a failing directory: %v", err)
	}
	if _, _, _, err := sd.ResolveSession(ctx, kaiwa.NewCredential("acme")); kaiwa.ErrorCode(err) != kaiwa.CodeUnauthorized {
		t.Errorf("session of an unknown token: %v", err)
	}
}

// TestDirectoryRequestsOnTheWire: the directory's requests and replies
// keep the members the earlier directory used (a rolling upgrade runs both
// at once), and a malformed request is refused with bad_request.
func TestDirectoryRequestsOnTheWire(t *testing.T) {
	url := testenv.NATS(t)
	api, ua := newBus(t, url), newBus(t, url)
	tok := kaiwa.NewCredential("acme")
	srv, err := api.ServeDirectory(fakeDirectory{token: tok}, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unsubscribe()
	ask := func(op, body string) map[string]json.RawMessage {
		t.Helper()
		m, err := ua.Conn().Request("kaiwa.acme.dir."+op, []byte(body), 3*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		var rep map[string]json.RawMessage
		if err := json.Unmarshal(m.Data, &rep); err != nil {
			t.Fatalf("%s: %s: %v", op, m.Data, err)
		}
		return rep
	}
	if rep := ask("token", `{"token":"`+tok+`"}`); !strings.Contains(string(rep["identity"]), `"user":"alice"`) {
		t.Errorf("token reply %s", rep)
	}
	if rep := ask("channel", `{"ch":"world"}`); !strings.Contains(string(rep["channel"]), `"kind":"closed"`) {
		t.Errorf("channel reply %s", rep)
	}
	if rep := ask("member", `{"ch":"world","user":"alice"}`); string(rep["member"]) != "true" {
		t.Errorf("member reply %s", rep)
	}
	if rep := ask("ng", `{}`); !strings.Contains(string(rep["ng"]), `"words":["bad"]`) {
		t.Errorf("ng reply %s", rep)
	}
	if rep := ask("channel", `{"ch":"nope"}`); string(rep["error"]) != `{"code":"not_found","message":"no such channel"}` {
		t.Errorf("refusal %s", rep)
	}
	if rep := ask("member", `["not an object"]`); !strings.Contains(string(rep["error"]), `"code":"bad_request"`) {
		t.Errorf("malformed request answered %s", rep)
	}
}

// batchDirectory answers session lookups in batches, holding every batch
// until gate is closed, and records the batches' sizes.
type batchDirectory struct {
	fakeDirectory
	good map[string]string // token → user
	gate chan struct{}

	mu    sync.Mutex
	sizes []int
}

func (d *batchDirectory) ResolveSessions(_ context.Context, tokens []string) []kaiwa.SessionInfo {
	d.mu.Lock()
	d.sizes = append(d.sizes, len(tokens))
	d.mu.Unlock()
	<-d.gate
	out := make([]kaiwa.SessionInfo, len(tokens))
	for i, tok := range tokens {
		switch user, ok := d.good[tok]; {
		case user == "broken":
			out[i].Err = errors.New("database down")
		case ok:
			out[i] = kaiwa.SessionInfo{
				Identity:  kaiwa.Identity{Tenant: "acme", User: user, ExpiresAt: time.Now().Add(time.Hour)},
				Sanctions: []kaiwa.Sanction{{User: user, Kind: kaiwa.SanctionMute}},
				Channels:  []string{"guild." + user},
			}
		default:
			out[i].Err = kaiwa.Errorf(kaiwa.CodeUnauthorized, "unknown token")
		}
	}
	return out
}

func (d *batchDirectory) batches() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.sizes)
}

// TestDirectoryBatchesSessionLookups: session lookups made while the
// batchers are busy are answered together, each with its own answer.
func TestDirectoryBatchesSessionLookups(t *testing.T) {
	url := testenv.NATS(t)
	api, ua := newBus(t, url), newBus(t, url)
	d := &batchDirectory{good: map[string]string{}, gate: make(chan struct{})}
	const n = 200
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = kaiwa.NewCredential("acme")
		switch {
		case i%10 == 3:
			// unknown
		case i == 7:
			d.good[tokens[i]] = "broken"
		default:
			d.good[tokens[i]] = fmt.Sprint("u", i)
		}
	}
	srv, err := api.ServeDirectory(d, nil, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unsubscribe()
	var release sync.Once
	open := func() { release.Do(func() { close(d.gate) }) }
	defer open() // before Unsubscribe, which waits for the batchers
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, sanctions, chs, err := ua.Directory().(interface {
				ResolveSession(context.Context, string) (kaiwa.Identity, []kaiwa.Sanction, []string, error)
			}).ResolveSession(context.Background(), tok)
			user, known := d.good[tok]
			switch {
			case user == "broken":
				if kaiwa.ErrorCode(err) != kaiwa.CodeUnavailable {
					errs <- fmt.Errorf("token %d: a failed lookup answered %v, want unavailable", i, err)
				}
			case !known:
				if kaiwa.ErrorCode(err) != kaiwa.CodeUnauthorized {
					errs <- fmt.Errorf("token %d: an unknown token answered %v", i, err)
				}
			case err != nil || id.User != user || len(sanctions) != 1 || sanctions[0].Tenant != "acme" || !slices.Equal(chs, []string{"guild." + user}):
				errs <- fmt.Errorf("token %d: %+v %+v %v %v, want user %s", i, id, sanctions, chs, err, user)
			}
		}()
	}
	// Every batcher takes what waits and stops at the gate; the rest gather
	// in the UA (which asks two batches at a time) and the API's queue.
	testenv.Eventually(t, "every batcher to hold a batch", 10*time.Second, func() bool { return len(d.batches()) == batchers })
	time.Sleep(200 * time.Millisecond)
	open()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sizes, sum := d.batches(), 0
	for _, s := range sizes {
		sum += s
		if s > maxBatch {
			t.Errorf("a batch of %d, over the bound", s)
		}
	}
	// The UA's batches may be split across the API's: a few more.
	if sum != n || len(sizes) > n/maxBatch+4*batchers {
		t.Errorf("%d lookups in batches %v", n, sizes)
	}
}

// TestConcurrentSubscribesAreConfirmed: subscriptions made at once share
// round trips to the server, and each is in place when its call returns:
// a message published right after reaches it.
func TestConcurrentSubscribesAreConfirmed(t *testing.T) {
	url := testenv.NATS(t)
	pub, ua := newBus(t, url), newBus(t, url)
	const n = 64
	got := make([]collector, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := fmt.Sprint("room.", i)
			sub, err := ua.SubscribeChannel("acme", ch, got[i].handler())
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			if _, err := pub.Publish(context.Background(), kaiwa.Message{Tenant: "acme", Channel: ch, From: "alice", Text: "hi"}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range got {
		testenv.Eventually(t, fmt.Sprint("the message of room.", i), 5*time.Second, func() bool { return len(got[i].messages()) == 1 })
	}
}

// TestPublishAcrossANATSRestart: a publish made while NATS is down is
// retried with the same de-duplication id until NATS is back, so it
// succeeds once; one that runs out of time says the outcome is unknown
// and names the cid, and resending with that cid stores the message at
// most once.
func TestPublishAcrossANATSRestart(t *testing.T) {
	dir := t.TempDir()
	ns := testenv.StartNATS(t, -1, dir)
	port := ns.Addr().(*net.TCPAddr).Port
	b := newBus(t, ns.ClientURL())
	ctx := context.Background()
	publish(t, b, "acme", "world", "before")

	ns.Shutdown()
	ns.WaitForShutdown()
	testenv.Eventually(t, "the bus to notice", 5*time.Second, func() bool { return !b.Conn().IsConnected() })

	// Down for good within this publish's deadline: unknown outcome.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	lost, err := b.Publish(short, kaiwa.Message{Tenant: "acme", Channel: "world", From: "alice", Text: "in doubt"})
	cancel()
	if kaiwa.ErrorCode(err) != kaiwa.CodeUnavailable || lost.CID == "" || !strings.Contains(err.Error(), lost.CID) {
		t.Fatalf("publish while down = %+v, %v; want unavailable naming the cid", lost, err)
	}

	// Back within this one's deadline: it succeeds.
	done := make(chan kaiwa.Message, 1)
	go func() {
		long, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		m, err := b.Publish(long, kaiwa.Message{Tenant: "acme", Channel: "world", From: "alice", Text: "retried"})
		if err != nil {
			t.Errorf("publish across the restart: %v", err)
		}
		done <- m
	}()
	time.Sleep(500 * time.Millisecond)
	testenv.StartNATS(t, port, dir)
	retried := <-done

	// The resend of the one in doubt, with its cid, and again: one message.
	again := kaiwa.Message{Tenant: "acme", Channel: "world", From: "alice", Text: "in doubt", CID: lost.CID}
	m1, err := b.Publish(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := b.Publish(ctx, again)
	if err != nil || m2.Seq != m1.Seq {
		t.Fatalf("second resend = %+v, %v; want seq %d", m2, err, m1.Seq)
	}
	got, err := b.History(ctx, "acme", "world", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	// The one in doubt may have been stored by its first attempt (a
	// publish made while disconnected goes out on reconnect): either way
	// it is there once.
	seqs := map[string][]uint64{}
	for _, m := range got {
		seqs[m.Text] = append(seqs[m.Text], m.Seq)
	}
	if len(got) != 3 || !slices.Equal(seqs["retried"], []uint64{retried.Seq}) || !slices.Equal(seqs["in doubt"], []uint64{m1.Seq}) {
		t.Fatalf("history %v; want before, retried (seq %d) and in doubt (seq %d) once each", seqs, retried.Seq, m1.Seq)
	}
}

// playerDir is a directory that answers session lookups with two member
// channels, one of them direct, and player state for them.
type playerDir struct {
	fakeDirectory
	gate chan struct{} // when set, session lookups wait for it

	mu       sync.Mutex
	asks     []kaiwa.PlayerStartRequest
	sessions []int // the size of each batch of session lookups
	starts   []int // the size of each batch of player state
}

func (d *playerDir) ResolveSessions(_ context.Context, tokens []string) []kaiwa.SessionInfo {
	d.mu.Lock()
	d.sessions = append(d.sessions, len(tokens))
	d.mu.Unlock()
	if d.gate != nil {
		<-d.gate
	}
	out := make([]kaiwa.SessionInfo, len(tokens))
	for i := range tokens {
		out[i] = kaiwa.SessionInfo{
			Identity: kaiwa.Identity{Tenant: "acme", User: "alice", ExpiresAt: time.Now().Add(time.Hour)},
			Channels: []string{"guild.1", kaiwa.DMChannel("alice", "bob")},
		}
	}
	return out
}

func (d *playerDir) asked() []kaiwa.PlayerStartRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.asks)
}

func (d *playerDir) StartPlayers(_ context.Context, reqs []kaiwa.PlayerStartRequest) []kaiwa.PlayerStartResult {
	d.mu.Lock()
	d.asks = append(d.asks, reqs...)
	d.starts = append(d.starts, len(reqs))
	d.mu.Unlock()
	out := make([]kaiwa.PlayerStartResult, len(reqs))
	for i, r := range reqs {
		out[i].Start.Blocks = []string{"troll"}
		for _, ch := range r.Channels {
			out[i].Start.Unread = append(out[i].Start.Unread, kaiwa.Unread{Channel: ch, Count: 3, Read: 7})
		}
	}
	return out
}

// TestSessionLookupBringsPlayerState: a UA that asks gets the user's own
// state for the member channels (direct ones left out) with the session
// lookup; one that does not ask, or a directory that cannot answer it,
// gets none.
func TestSessionLookupBringsPlayerState(t *testing.T) {
	url := testenv.NATS(t)
	api, ua := newBus(t, url), newBus(t, url)
	d := &playerDir{}
	srv, err := api.ServeDirectory(d, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unsubscribe()
	type playerLookup interface {
		ResolveSessionPlayer(context.Context, string) (kaiwa.Identity, []kaiwa.Sanction, []string, *kaiwa.PlayerStart, error)
	}
	tok := kaiwa.NewCredential("acme")
	id, _, chs, st, err := ua.Directory().(playerLookup).ResolveSessionPlayer(context.Background(), tok)
	if err != nil || id.User != "alice" || len(chs) != 2 {
		t.Fatalf("lookup = %+v %v %v", id, chs, err)
	}
	want := &kaiwa.PlayerStart{Blocks: []string{"troll"}, Unread: []kaiwa.Unread{{Channel: "guild.1", Count: 3, Read: 7}}}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("player state %+v, want %+v", st, want)
	}
	if asks := d.asked(); len(asks) != 1 || asks[0].Tenant != "acme" || asks[0].User != "alice" || !slices.Equal(asks[0].Channels, []string{"guild.1"}) {
		t.Errorf("asked %+v", asks)
	}
	// Without asking, no state is worked out.
	if _, _, _, err := ua.Directory().(interface {
		ResolveSession(context.Context, string) (kaiwa.Identity, []kaiwa.Sanction, []string, error)
	}).ResolveSession(context.Background(), tok); err != nil || len(d.asked()) != 1 {
		t.Errorf("plain lookup: %v, %d asks", err, len(d.asked()))
	}
	srv.Unsubscribe()

	// A directory that cannot answer it: the lookup still works.
	plain, err := api.ServeDirectory(&batchDirectory{good: map[string]string{tok: "alice"}, gate: closedGate()}, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Unsubscribe()
	id, _, _, st, err = ua.Directory().(playerLookup).ResolveSessionPlayer(context.Background(), tok)
	if err != nil || id.User != "alice" || st != nil {
		t.Errorf("lookup without player state = %+v %+v %v", id, st, err)
	}
}

// TestSessionBatchBringsItsPlayerState: the player state of a batch of
// session lookups is asked together, once per batch, whatever the batch's
// size.
func TestSessionBatchBringsItsPlayerState(t *testing.T) {
	url := testenv.NATS(t)
	api, ua := newBus(t, url), newBus(t, url)
	d := &playerDir{gate: make(chan struct{})}
	srv, err := api.ServeDirectory(d, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unsubscribe()
	lookup := ua.Directory().(interface {
		ResolveSessionPlayer(context.Context, string) (kaiwa.Identity, []kaiwa.Sanction, []string, *kaiwa.PlayerStart, error)
	})
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _, st, err := lookup.ResolveSessionPlayer(context.Background(), kaiwa.NewCredential("acme"))
			if err == nil && (st == nil || len(st.Blocks) != 1) {
				err = fmt.Errorf("player state %+v", st)
			}
			errs <- err
		}()
	}
	// Every lookup waits: the first batches hold the gate, the rest queue.
	testenv.Eventually(t, "the first batches to wait", 5*time.Second, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.sessions) > 0
	})
	time.Sleep(200 * time.Millisecond) // the rest reach the queue
	close(d.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	total, most := 0, 0
	for _, k := range d.starts {
		total += k
		most = max(most, k)
	}
	if total != n || !slices.Equal(slices.Sorted(slices.Values(d.starts)), slices.Sorted(slices.Values(d.sessions))) || most < 2 {
		t.Errorf("session batches %v, player state batches %v; want the same batches, %d lookups in all, one batch of several", d.sessions, d.starts, n)
	}
}

// closedGate is a gate that lets everything through.
func closedGate() chan struct{} {
	g := make(chan struct{})
	close(g)
	return g
}

// dirRequests counts the directory requests of tenant acme by operation,
// as NATS carries them.
func dirRequests(t *testing.T, b *Bus) func(op string) int {
	t.Helper()
	var mu sync.Mutex
	n := map[string]int{}
	sub, err := b.Conn().Subscribe(b.subj.dir("acme", "*"), func(m *nats.Msg) {
		mu.Lock()
		n[m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	return func(op string) int {
		mu.Lock()
		defer mu.Unlock()
		return n[op]
	}
}

// TestUASessionLookupsGoInBatches: lookups a UA makes while earlier ones
// are being answered go to the API tier together, one request for many,
// and each is answered as alone: a token the directory refuses is refused,
// the others get their sessions.
func TestUASessionLookupsGoInBatches(t *testing.T) {
	url := testenv.NATS(t)
	api, ua := newBus(t, url), newBus(t, url)
	const n = 12
	tokens := make([]string, n)
	good := map[string]string{}
	for i := range tokens {
		tokens[i] = kaiwa.NewCredential("acme")
		if i > 0 {
			good[tokens[i]] = fmt.Sprint("user", i)
		}
	}
	d := &batchDirectory{good: good, gate: make(chan struct{})}
	srv, err := api.ServeDirectory(d, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unsubscribe()
	requests := dirRequests(t, api)
	dir := ua.Directory().(interface {
		ResolveSession(context.Context, string) (kaiwa.Identity, []kaiwa.Sanction, []string, error)
	})
	errs := make([]error, n)
	users := make([]string, n)
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, _, _, err := dir.ResolveSession(context.Background(), tok)
			users[i], errs[i] = id.User, err
		}()
	}
	testenv.Eventually(t, "the first lookups to reach the directory", 5*time.Second, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.sizes) > 0
	})
	time.Sleep(200 * time.Millisecond) // the rest gather in the UA
	close(d.gate)
	wg.Wait()
	if kaiwa.ErrorCode(errs[0]) != kaiwa.CodeUnauthorized {
		t.Errorf("the unknown token: %v, want unauthorized", errs[0])
	}
	for i := 1; i < n; i++ {
		if errs[i] != nil || users[i] != good[tokens[i]] {
			t.Errorf("lookup %d: %q, %v; want %q", i, users[i], errs[i], good[tokens[i]])
		}
	}
	if one, many := requests("session"), requests("sessions"); many == 0 || one+many >= n {
		t.Errorf("%d lookups made %d single and %d batch requests; want batches, fewer requests than lookups", n, one, many)
	}
}

// TestUASessionLookupsWithAnEarlierAPI: an API tier that serves lookups
// one at a time only (the earlier release) still answers every lookup of
// a UA that gathers them.
func TestUASessionLookupsWithAnEarlierAPI(t *testing.T) {
	url := testenv.NATS(t)
	api, ua := newBus(t, url), newBus(t, url)
	sub, err := api.Conn().QueueSubscribe(api.subj.dir("acme", string(opSession)), DirectoryQueue, func(m *nats.Msg) {
		var req sessionRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(20 * time.Millisecond) // slow enough for the next lookups to gather
		rep, _ := json.Marshal(sessionReply{Identity: kaiwa.Identity{Tenant: "acme", User: "u" + req.Token[len(req.Token)-4:], ExpiresAt: time.Now().Add(time.Hour)}, Session: true})
		_ = m.Respond(rep)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := api.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	dir := ua.Directory().(interface {
		ResolveSession(context.Context, string) (kaiwa.Identity, []kaiwa.Sanction, []string, error)
	})
	const n = 10
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := kaiwa.NewCredential("acme")
			id, _, _, err := dir.ResolveSession(context.Background(), tok)
			if err != nil || id.User != "u"+tok[len(tok)-4:] {
				t.Errorf("lookup: %+v, %v", id, err)
			}
		}()
	}
	wg.Wait()
}
