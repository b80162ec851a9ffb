package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

func TestVersionsSideBySide(t *testing.T) {
	c := newCluster(t, clusterOpts{versions: `[
		{"name": "v1", "status": "deprecated", "sunset": "2027-06-30"},
		{"name": "v2", "status": "supported", "tenants": ["acme"]},
		{"name": "v0", "status": "retired"}
	]`})
	acme, rival := c.tenant("acme"), c.tenant("rival")
	c.must(201, "PUT", "/channels/world", acme, map[string]any{"kind": "open"})
	all := []string{"*"}

	// A retired version answers 410 and an unknown one 404, from nginx.
	for path, want := range map[string]int{"/v0/ws": 410, "/v0/api/tokens": 410, "/v9/ws": 404} {
		resp, err := c.http.Get(c.nginx.HTTPSURL + path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want || body.Error.Code == "" {
			t.Errorf("GET %s = %d %+v, want %d with a JSON error", path, resp.StatusCode, body, want)
		}
	}

	alice, err := c.dialV("v1", client.Options{Token: c.token(acme, "alice", all, all), Header: http.Header{"User-Agent": {"e2e-v1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if d := alice.Ready().Deprecated; d == nil || !strings.HasPrefix(d.Sunset, "2027-06-30") {
		t.Errorf("v1 ready.deprecated = %+v", d)
	}
	bob, err := c.dialV("v2", client.Options{Token: c.token(acme, "bob", all, all), Header: http.Header{"User-Agent": {"e2e-v2"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if bob.Ready().Deprecated != nil || bob.Version() != "v2" {
		t.Errorf("v2 ready = %+v", bob.Ready())
	}
	ctx := ctxT(t, 30*time.Second)
	for _, conn := range []*client.Conn{alice, bob} {
		if err := conn.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	if p := testenv.NextEvent(t, alice, "presence").Presence; p.User != "bob" {
		t.Errorf("v1 saw presence %+v", p)
	}
	// v1 and v2 chat together; v2 sees seq and prev, v1 does not.
	id1, err := alice.Say(ctx, "world", "from v1", json.RawMessage(`{"a": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	id2, seq2, err := bob.SayCID(ctx, "world", "from v2", nil, client.NewCID())
	if err != nil {
		t.Fatal(err)
	}
	m := testenv.NextEvent(t, bob, "msg").Msg
	if m.ID != id1 || m.Seq == 0 || string(m.Data) != `{"a": 1}` {
		t.Errorf("v2 got %+v", m)
	}
	first := m.Seq
	if m = testenv.NextEvent(t, bob, "msg").Msg; m.ID != id2 || m.Seq != seq2 || m.Prev != first {
		t.Errorf("v2 got %+v, want seq %d prev %d", m, seq2, first)
	}
	testenv.NextEvent(t, alice, "msg")
	if m = testenv.NextEvent(t, alice, "msg").Msg; m.ID != id2 || m.Seq != 0 || m.Text != "from v2" {
		t.Errorf("v1 got %+v", m)
	}
	// A system message through the v2 API reaches both.
	sys := c.mustV("v2", 201, "POST", "/channels/world/messages", acme, map[string]any{"text": "notice"})
	for _, conn := range []*client.Conn{alice, bob} {
		if m := testenv.NextEvent(t, conn, "msg").Msg; m.ID != sys["id"] || !m.System {
			t.Errorf("system message = %+v", m)
		}
	}
	// v2 is restricted to acme: rival's clients are refused, with 4003.
	_, err = c.dialV("v2", client.Options{Token: c.token(rival, "carol", all, all)})
	if !kaiwa.IsCode(err, kaiwa.CodeVersionNotAllowed) {
		t.Errorf("rival on v2: %v", err)
	}
	if c2, err := c.dialV("v1", client.Options{Token: c.token(rival, "carol", all, all)}); err != nil {
		t.Errorf("rival on v1: %v", err)
	} else {
		c2.Close()
	}

	// /v1/ws and /v2/ws reached their own version's UA processes.
	alice.Close()
	bob.Close()
	up := c.upstreams(t, "e2e-v1", "e2e-v2")
	if !strings.Contains(up["e2e-v1"], "ua-v1-") || !strings.Contains(up["e2e-v2"], "ua-v2-") {
		t.Errorf("upstreams: %v", up)
	}
}

// collect reads a connection's events into messages until it ends or
// stop is closed; it fails on a duplicate id.
type inbox struct {
	msgs      []client.Message
	ids       map[string]bool
	resumed   map[string]bool
	dupes     int
	reconnect bool
}

func newInbox() *inbox { return &inbox{ids: map[string]bool{}, resumed: map[string]bool{}} }

func (in *inbox) take(ev client.Event) {
	switch ev.Op {
	case "msg":
		if in.ids[ev.Msg.ID] {
			in.dupes++
			return
		}
		in.ids[ev.Msg.ID] = true
		in.msgs = append(in.msgs, *ev.Msg)
	case "resumed":
		in.resumed[ev.Ch] = ev.Recovered
	case "reconnect":
		in.reconnect = true
	}
}

func TestResumeReplaysExactlyWhatWasMissed(t *testing.T) {
	c := newCluster(t, clusterOpts{busArgs: []string{"--history-max-msgs", "400"}})
	acme := c.tenant("acme")
	c.settings("acme", `{"rate_ops": 1000, "rate_burst": 1000}`)
	c.must(201, "PUT", "/channels/world", acme, map[string]any{"kind": "open"})
	all := []string{"*"}
	bobTok, aliceTok := c.token(acme, "bob", all, all), c.token(acme, "alice", all, all)
	ctx := ctxT(t, 60*time.Second)
	alice, err := c.dialV("v2", client.Options{Token: aliceTok})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := c.dialV("v2", client.Options{Token: bobTok})
	if err != nil {
		t.Fatal(err)
	}
	for _, conn := range []*client.Conn{alice, bob} {
		if err := conn.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.Say(ctx, "world", "before", nil); err != nil {
		t.Fatal(err)
	}
	testenv.NextEvent(t, bob, "msg")
	seen := bob.LastSeqs()
	bob.Close()
	var missed []string
	for i := range 200 {
		id, err := alice.Say(ctx, "world", fmt.Sprint("missed ", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		missed = append(missed, id)
	}
	bob, err = c.dialV("v2", client.Options{Token: bobTok, Resume: seen})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	in := newInbox()
	for !hasKey(in.resumed, "world") {
		in.take(nextAny(t, bob))
	}
	if !in.resumed["world"] || len(in.msgs) != 200 || in.dupes != 0 {
		t.Fatalf("resumed %v with %d messages (%d duplicates), want 200", in.resumed, len(in.msgs), in.dupes)
	}
	prev := seen["world"]
	for i, m := range in.msgs {
		if m.ID != missed[i] || m.Prev != prev {
			t.Fatalf("replayed[%d] = %s prev %d, want %s prev %d", i, m.ID, m.Prev, missed[i], prev)
		}
		prev = m.Seq
	}
	live, err := alice.Say(ctx, "world", "live", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := testenv.NextEvent(t, bob, "msg").Msg; m.ID != live || m.Prev != prev {
		t.Errorf("live after replay = %+v", m)
	}

	// A gap older than the history kept (the stream keeps 400 messages).
	seen = bob.LastSeqs()
	bob.Close()
	for i := range 450 {
		if _, err := alice.Say(ctx, "world", fmt.Sprint("flood ", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	bob, err = c.dialV("v2", client.Options{Token: bobTok, Resume: seen})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	ev := testenv.NextEvent(t, bob, "resumed")
	if ev.Ch != "world" || ev.Recovered {
		t.Errorf("resumed after an expired gap = %+v, want recovered false", ev)
	}
}

func hasKey(m map[string]bool, k string) bool { _, ok := m[k]; return ok }
