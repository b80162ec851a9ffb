package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

func TestChatThroughNginxAcrossTwoUAs(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	acme, rival := c.tenant("acme"), c.tenant("rival")
	for _, key := range []string{acme, rival} {
		c.must(201, "PUT", "/channels/world", key, map[string]any{"kind": "open", "title": "World"})
	}
	all := []string{"*"}
	alice := c.dialAs(c.token(acme, "alice", all, all), "e2e-alice")
	bob := c.dialAs(c.token(acme, "bob", all, all), "e2e-bob")
	// The rival title has users and a channel of the same names.
	rivalAlice := c.dial(c.token(rival, "alice", all, all))

	ctx := ctxT(t, 30*time.Second)
	for _, conn := range []*client.Conn{alice, bob, rivalAlice} {
		if err := conn.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	if p := testenv.NextEvent(t, alice, "presence").Presence; p.User != "bob" || p.Event != "join" {
		t.Errorf("alice saw presence %+v", p)
	}
	var ids []string
	for i := range 5 {
		from := alice
		if i%2 == 1 {
			from = bob
		}
		id, err := from.Say(ctx, "world", fmt.Sprint("hello ", i), json.RawMessage(`{"n": `+fmt.Sprint(i)+`}`))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, conn := range []*client.Conn{alice, bob} {
		for i := range 5 {
			m := testenv.NextEvent(t, conn, "msg").Msg
			if m.ID != ids[i] || m.Text != fmt.Sprint("hello ", i) || string(m.Data) != `{"n": `+fmt.Sprint(i)+`}` {
				t.Errorf("message %d delivered as %+v", i, m)
			}
		}
	}
	dmID, dmCh, err := bob.DM(ctx, "alice", "just us", nil)
	if err != nil || dmCh != "dm:alice:bob" {
		t.Fatalf("dm: %v %q", err, dmCh)
	}
	for _, conn := range []*client.Conn{alice, bob} {
		if m := testenv.NextEvent(t, conn, "msg").Msg; m.ID != dmID || m.Ch != dmCh || m.From != "bob" {
			t.Errorf("dm delivered as %+v", m)
		}
	}
	sys := c.must(201, "POST", "/channels/world/messages", acme, map[string]any{"text": "Maintenance at 05:00", "data": map[string]any{"kind": "notice"}})
	ids = append(ids, sys["id"].(string))
	for _, conn := range []*client.Conn{alice, bob} {
		if m := testenv.NextEvent(t, conn, "msg").Msg; !m.System || m.ID != sys["id"] || m.Text != "Maintenance at 05:00" {
			t.Errorf("system message delivered as %+v", m)
		}
	}

	// The log holds every message of the channel, in order.
	var logged []map[string]any
	testenv.Eventually(t, "the log writer", 10*time.Second, func() bool {
		logged = c.logged(acme, "world")
		return len(logged) >= len(ids)
	})
	if len(logged) != len(ids) {
		t.Fatalf("log has %d messages, want %d", len(logged), len(ids))
	}
	for i, m := range logged {
		if m["id"] != ids[i] {
			t.Errorf("log[%d] = %v, want id %s", i, m, ids[i])
		}
	}
	if m := logged[0]; m["from"] != "alice" || m["text"] != "hello 0" || m["ch"] != "world" {
		t.Errorf("log entry %v", m)
	}
	// The event log has the typed events of the session: connects, joins,
	// one say per message.
	testenv.Eventually(t, "say events", 10*time.Second, func() bool {
		_, m := c.api("GET", "/events?type=say&ch=world", acme, nil)
		evs, _ := m["events"].([]any)
		return len(evs) == 5
	})
	if _, m := c.api("GET", "/events?type=join&user=bob", acme, nil); len(m["events"].([]any)) == 0 {
		t.Errorf("no join event of bob: %v", m)
	}
	if _, m := c.api("GET", "/events?type=say", rival, nil); len(m["events"].([]any)) != 0 {
		t.Errorf("rival sees say events: %v", m)
	}
	dmLog := c.logged(acme, url.PathEscape("dm:alice:bob"))
	if len(dmLog) != 1 || dmLog[0]["id"] != dmID {
		t.Errorf("dm log = %v", dmLog)
	}

	// The rival title saw none of it.
	if got := c.logged(rival, "world"); len(got) != 0 {
		t.Errorf("rival's log of world: %v", got)
	}
	if got := c.logged(rival, url.PathEscape("dm:alice:bob")); len(got) != 0 {
		t.Errorf("rival's dm log: %v", got)
	}
	select {
	case ev := <-rivalAlice.Events():
		t.Errorf("rival's alice received %s", ev.Raw)
	case <-time.After(300 * time.Millisecond):
	}
	if h, err := rivalAlice.History(ctx, "world", 50, ""); err != nil || len(h) != 0 {
		t.Errorf("rival history = %v, %v", h, err)
	}
	// Rival's key cannot reach acme's members either.
	c.must(201, "PUT", "/channels/world/members/bob", acme, nil)
	if m := c.must(200, "GET", "/channels/world/members", rival, nil); len(m["members"].([]any)) != 0 {
		t.Errorf("rival sees members %v", m["members"])
	}

	// nginx (one worker, round robin) had put alice and bob on different
	// UA processes: their access-log lines, written at close, say which.
	alice.Close()
	bob.Close()
	upstream := c.upstreams(t, "e2e-alice", "e2e-bob")
	if upstream["e2e-alice"] == upstream["e2e-bob"] {
		t.Errorf("alice and bob were served by the same UA %s", upstream["e2e-alice"])
	}
}

func TestLogSurvivesMySQLOutage(t *testing.T) {
	var proxy *testenv.Proxy
	c := newCluster(t, clusterOpts{apiDSN: proxiedDSN(t, &proxy)})
	key := c.tenant("acme")
	c.must(201, "PUT", "/channels/world", key, map[string]any{"kind": "open"})
	all := []string{"*"}
	alice := c.dial(c.token(key, "alice", all, all))
	bob := c.dial(c.token(key, "bob", all, all))
	ctx := ctxT(t, 60*time.Second)
	for _, conn := range []*client.Conn{alice, bob} {
		if err := conn.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Cut()
	var ids []string
	for i := range 60 {
		from := []*client.Conn{alice, bob}[i%2]
		id, err := from.Say(ctx, "world", fmt.Sprint("during outage ", i), nil)
		if err != nil {
			t.Fatalf("say while MySQL is down: %v", err)
		}
		ids = append(ids, id)
		time.Sleep(20 * time.Millisecond) // stay under the rate limit
	}
	// Chat went on: bob received everything live.
	for i := range ids {
		if m := testenv.NextEvent(t, bob, "msg").Msg; m.ID != ids[i] {
			t.Fatalf("bob got %s, want %s", m.ID, ids[i])
		}
	}
	// The log cannot be read while MySQL is unreachable.
	if status, m := c.api("GET", "/channels/world/messages", key, nil); status != 503 {
		t.Errorf("log query during the outage = %d %v, want 503", status, m)
	}
	time.Sleep(time.Second) // let the log writer fail and back off
	proxy.Restore()
	var logged []map[string]any
	testenv.Eventually(t, "the log to catch up", 30*time.Second, func() bool {
		status, _ := c.api("GET", "/channels/world/messages?limit=1", key, nil)
		if status != 200 {
			return false
		}
		logged = c.logged(key, "world")
		return len(logged) >= len(ids)
	})
	seen := map[string]bool{}
	for i, m := range logged {
		id := m["id"].(string)
		if seen[id] {
			t.Errorf("message %s logged twice", id)
		}
		seen[id] = true
		if i < len(ids) && id != ids[i] {
			t.Errorf("log[%d] = %s, want %s", i, id, ids[i])
		}
	}
	if len(logged) != len(ids) {
		t.Errorf("log has %d messages, want %d", len(logged), len(ids))
	}
}

func TestBadInputThroughNginx(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	acme, rival := c.tenant("acme"), c.tenant("rival")
	c.must(201, "PUT", "/channels/world", acme, map[string]any{"kind": "open"})
	c.must(201, "PUT", "/channels/staff", acme, map[string]any{"kind": "closed"})
	ctx := ctxT(t, 30*time.Second)
	tok := c.token(acme, "mallory", []string{"world"}, []string{"world"})
	m := c.dial(tok)
	bystander := c.dial(c.token(acme, "bob", []string{"*"}, []string{"*"}))
	if err := bystander.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}

	// API: wrong key, another tenant's key on a path, bad bodies, bad names.
	for _, tc := range []struct {
		name, method, path, key string
		body                    any
		status                  int
		code                    string
	}{
		{"no key", "GET", "/channels/world/members", "", nil, 401, "unauthorized"},
		{"forged key", "GET", "/channels/world/members", kaiwa.NewCredential("acme"), nil, 401, "unauthorized"},
		{"rival key on acme's closed channel", "PUT", "/channels/staff/members/x", rival, nil, 404, "not_found"},
		{"malformed json", "POST", "/tokens", acme, `{"user":`, 400, "bad_request"},
		{"invalid utf-8", "POST", "/channels/world/messages", acme, "{\"text\":\"\xff\"}", 400, "bad_request"},
		{"bad channel", "PUT", "/channels/" + url.PathEscape("a b"), acme, map[string]any{"kind": "open"}, 400, "bad_request"},
		{"sql-ish channel", "GET", "/channels/" + url.PathEscape("x';DROP TABLE messages;--") + "/messages", acme, nil, 400, "bad_request"},
		{"oversize body", "POST", "/channels/world/messages", acme, `{"text":"` + strings.Repeat("a", 200000) + `"}`, 413, "too_large"},
		{"text over the limit", "POST", "/channels/world/messages", acme, map[string]any{"text": strings.Repeat("a", 1001)}, 413, "too_large"},
	} {
		status, body := c.api(tc.method, tc.path, tc.key, tc.body)
		code := ""
		if e, ok := body["error"].(map[string]any); ok {
			code, _ = e["code"].(string)
		}
		if status != tc.status || code != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	// An expired token is refused at the upgrade through nginx.
	short := c.must(201, "POST", "/tokens", acme, map[string]any{"user": "old", "ttl_seconds": 1})["token"].(string)
	time.Sleep(1100 * time.Millisecond)
	if _, err := client.Dial(ctx, c.nginx.WSSURL+"/v1/ws", client.Options{Token: short, TLSConfig: c.tls}); !kaiwa.IsCode(err, kaiwa.CodeTokenExpired) {
		t.Errorf("expired token: %v", err)
	}
	// Another tenant's token with acme's name swapped in is refused.
	rivalTok := c.token(rival, "mallory", nil, nil)
	forged := "acme" + rivalTok[strings.Index(rivalTok, ":"):]
	if _, err := client.Dial(ctx, c.nginx.WSSURL+"/v1/ws", client.Options{Token: forged, TLSConfig: c.tls}); !kaiwa.IsCode(err, kaiwa.CodeUnauthorized) {
		t.Errorf("forged token: %v", err)
	}
	// WebSocket: each class of bad input gets its code; the session lives on.
	for _, frame := range []string{`{"op":"join"`, "{\"op\":\"say\",\"text\":\"\xc3\x28\"}", `{"op":"fly"}`, `{"op":"say","ch":"world","text":"` + strings.Repeat("z", 17000) + `"}`} {
		if err := m.SendRaw(ctx, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		ev := testenv.NextEvent(t, m, "error")
		if ev.Err == nil {
			t.Fatalf("no error for %.40q", frame)
		}
	}
	testenv.WantCode(t, m.Join(ctx, "staff"), kaiwa.CodeForbidden)
	testenv.WantCode(t, m.Join(ctx, "bad channel"), kaiwa.CodeBadRequest)
	if err := m.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Say(ctx, "world", "still fine", nil); err != nil {
		t.Fatal(err)
	}
	if msg := testenv.NextEvent(t, bystander, "msg").Msg; msg.Text != "still fine" {
		t.Errorf("bystander got %+v", msg)
	}
}

// TestFrozenDatabaseAnswersInTime: while MySQL accepts connections but
// answers nothing (a stopped process), API calls that need it answer 503
// unavailable within 2 s instead of hanging; once it answers again, so do
// they.
func TestFrozenDatabaseAnswersInTime(t *testing.T) {
	var proxy *testenv.Proxy
	c := newCluster(t, clusterOpts{apiDSN: proxiedDSN(t, &proxy)})
	key := c.tenant("acme")
	c.must(201, "PUT", "/channels/world", key, map[string]any{"kind": "open"})
	proxy.Freeze()
	for _, call := range []struct{ method, path string }{
		{"GET", "/channels/world/messages"},
		{"PUT", "/channels/guild"},
		{"GET", "/events"},
	} {
		start := time.Now()
		status, body := c.api(call.method, call.path, key, map[string]any{"kind": "open"})
		took := time.Since(start)
		if status != 503 || took > 2*time.Second {
			t.Errorf("%s %s while MySQL is frozen = %d %v after %v, want 503 within 2s", call.method, call.path, status, body, took)
		}
	}
	proxy.Thaw()
	testenv.Eventually(t, "the API answers again", 20*time.Second, func() bool {
		status, _ := c.api("GET", "/channels/world/messages", key, nil)
		return status == 200
	})
}

// proxiedDSN returns an apiDSN option that sends the API's MySQL
// connections through a proxy the test can cut or freeze, set in *proxy.
func proxiedDSN(t *testing.T, proxy **testenv.Proxy) func(string) string {
	return func(dsn string) string {
		addr := strings.TrimSuffix(strings.SplitN(strings.SplitN(dsn, "tcp(", 2)[1], ")", 2)[0], ")")
		*proxy = testenv.NewProxy(t, addr)
		return testenv.DSNVia(dsn, (*proxy).Addr())
	}
}
