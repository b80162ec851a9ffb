package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// TestLiveChangesReachBothUAsWithinASecond: an NG-list change and a ban
// made through the API take effect on sessions on two UA processes within
// 1 s.
func TestLiveChangesReachBothUAsWithinASecond(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	key := c.tenant("acme")
	c.must(201, "PUT", "/channels/world", key, map[string]any{"kind": "open"})
	all := []string{"*"}
	a := c.dialAs(c.token(key, "alice", all, all), "e2e-a")
	b := c.dialAs(c.token(key, "bob", all, all), "e2e-b")
	ctx := ctxT(t, 30*time.Second)
	for _, conn := range []*client.Conn{a, b} {
		if err := conn.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	c.must(200, "PUT", "/ngwords", key, map[string]any{"words": []string{"noob"}, "policy": "reject"})
	changed := time.Now()
	for _, conn := range []*client.Conn{a, b} {
		for {
			_, err := conn.Say(ctx, "world", "ｎ.ｏ.ｏ.ｂ", nil)
			if kaiwa.IsCode(err, kaiwa.CodeNGWord) {
				break
			}
			if err != nil && !kaiwa.IsCode(err, kaiwa.CodeRateLimited) {
				t.Fatal(err)
			}
			if time.Since(changed) > time.Second {
				t.Fatalf("NG list not applied within 1 s (last say: %v)", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Ban bob: his session closes at once and he cannot come back.
	bob2 := c.dialAs(c.token(key, "bob", all, all), "e2e-b2")
	c.must(200, "PUT", "/users/bob/ban", key, map[string]any{"reason": "cheating"})
	banned := time.Now()
	for _, conn := range []*client.Conn{b, bob2} {
		select {
		case <-conn.Done():
		case <-time.After(time.Second - time.Since(banned)):
			t.Fatal("ban did not close bob's sessions within 1 s")
		}
		if code, _, _ := conn.CloseStatus(); code != 4003 {
			t.Errorf("ban closed with %d, want 4003", code)
		}
	}
	if _, err := c.dialV("v1", client.Options{Token: c.token(key, "bob", all, all)}); !kaiwa.IsCode(err, kaiwa.CodeBanned) {
		t.Errorf("banned user's new connection: %v", err)
	}
	c.must(204, "DELETE", "/users/bob/ban", key, nil)
	if conn, err := c.dialV("v1", client.Options{Token: c.token(key, "bob", all, all)}); err != nil {
		t.Errorf("after the ban is lifted: %v", err)
	} else {
		conn.Close()
	}
	// Alice, on the other UA, was untouched.
	if _, err := a.Say(ctx, "world", "still here", nil); err != nil {
		t.Errorf("alice after bob's ban: %v", err)
	}
}

// TestNoRouteCrossesTenants calls every route of the API (the list comes
// from the OpenAPI document the API serves) with tenant B's key, naming
// tenant A's channels, users, messages, NG words and keys, and checks that
// nothing of A leaks into the answers and nothing of A changed.
func TestNoRouteCrossesTenants(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	akey, bkey := c.tenant("acme"), c.tenant("rival")
	all := []string{"*"}
	const secret = "acmesecret"
	// Tenant A: channels, membership, messages, NG words, a mute, events.
	c.must(201, "PUT", "/channels/world", akey, map[string]any{"kind": "open", "title": secret + "-title"})
	c.must(201, "PUT", "/channels/guild", akey, map[string]any{"kind": "closed", "title": secret + "-guild"})
	c.must(201, "PUT", "/channels/guild/members/alice", akey, nil)
	alice := c.dial(c.token(akey, "alice", all, all))
	ctx := ctxT(t, 60*time.Second)
	if err := alice.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	msgID, err := alice.Say(ctx, "world", secret+" message", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.must(201, "POST", "/users/alice/messages", akey, map[string]any{"text": secret + " inbox"})
	c.must(200, "PUT", "/ngwords", akey, map[string]any{"words": []string{secret + "word"}, "policy": "mask"})
	c.must(200, "PUT", "/users/carol/mute", akey, map[string]any{"reason": secret + " reason"})
	keys := c.must(200, "GET", "/keys", akey, nil)["keys"].([]any)
	aKeyID := fmt.Sprint(keys[0].(map[string]any)["id"])
	testenv.Eventually(t, "acme's log", 10*time.Second, func() bool { return len(c.logged(akey, "world")) == 1 })
	before := snapshot(c, akey)

	// Every documented route, called with B's key.
	resp, err := c.http.Get(c.nginx.HTTPSURL + "/v1/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	params := map[string]string{"{ch}": "world", "{user}": "alice", "{other}": "bob", "{id}": msgID, "{word}": secret + "word", "{kid}": "k1", "{jti}": "j1"}
	bodies := map[string]string{
		"POST /tokens":                      `{"user":"alice","ttl_seconds":60,"join":["*"],"publish":["*"]}`,
		"PUT /channels/{ch}":                `{"kind":"open","title":"rival"}`,
		"POST /channels/{ch}/messages":      `{"text":"rival"}`,
		"POST /users/{user}/messages":       `{"text":"rival"}`,
		"POST /messages":                    `{"text":"rival"}`,
		"PUT /ngwords":                      `{"words":["rivalword"],"policy":"reject"}`,
		"POST /ngwords":                     `{"words":["rivalword2"]}`,
		"POST /users/{user}/kick":           `{"reason":"rival"}`,
		"PUT /users/{user}/ban":             `{"reason":"rival"}`,
		"PUT /users/{user}/mute":            `{"reason":"rival"}`,
		"PUT /channels/{ch}/members/{user}": `{}`,
		"POST /signing-keys":                `{"kid":"k1","alg":"HS256","secret":"rival's secret of thirty-two bytes or more"}`,
	}
	var calls []string
	for path, methods := range doc.Paths {
		for m := range methods {
			method := strings.ToUpper(m)
			if !slices.Contains([]string{"GET", "PUT", "POST", "DELETE", "PATCH"}, method) {
				continue
			}
			calls = append(calls, method+" "+path)
		}
	}
	slices.Sort(calls)
	// Deletions last, so every other call still finds things to name.
	slices.SortStableFunc(calls, func(a, b string) int {
		return boolInt(strings.HasPrefix(a, "DELETE")) - boolInt(strings.HasPrefix(b, "DELETE"))
	})
	for _, call := range calls {
		method, tmpl, _ := strings.Cut(call, " ")
		path := tmpl
		for p, v := range params {
			path = strings.ReplaceAll(path, p, v)
		}
		if tmpl == "/keys/{id}" {
			path = "/keys/" + aKeyID
		}
		if strings.Contains(path, "{") {
			t.Fatalf("no value for the parameters of %s: add one to this test", call)
		}
		var body io.Reader
		if b, ok := bodies[call]; ok {
			body = strings.NewReader(b)
		}
		req, _ := http.NewRequest(method, c.nginx.HTTPSURL+"/v1/api"+path, body)
		req.Header.Set("Authorization", "Bearer "+bkey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", call, err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s with B's key: %d %s", call, resp.StatusCode, out)
		}
		// A's data that B never sent: titles, texts, reasons, A's message
		// id (unless B named it in the path, which a 404 may echo).
		for _, mark := range []string{secret + "-title", secret + "-guild", secret + " message", secret + " inbox", secret + " reason"} {
			if strings.Contains(string(out), mark) {
				t.Errorf("%s with B's key leaked %q: %s", call, mark, out)
			}
		}
		if !strings.Contains(path, msgID) && strings.Contains(string(out), msgID) {
			t.Errorf("%s with B's key leaked A's message id: %s", call, out)
		}
		if tmpl == "/ngwords" && strings.Contains(string(out), secret+"word") {
			t.Errorf("%s with B's key leaked A's NG list: %s", call, out)
		}
	}
	if len(calls) < 25 {
		t.Errorf("only %d routes documented", len(calls))
	}
	// Nothing of A changed, and A's session lives on.
	if after := snapshot(c, akey); after != before {
		t.Errorf("tenant A changed:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := alice.Say(ctx, "world", "still here", nil); err != nil {
		t.Errorf("A's session after B's calls: %v", err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// snapshot is everything tenant A's key can read, as one string.
func snapshot(c *cluster, key string) string {
	c.t.Helper()
	var parts []string
	for _, path := range []string{
		"/channels/world/members", "/channels/guild/members", "/channels/world/messages?limit=100",
		"/messages?limit=100", "/ngwords", "/users/carol/sanctions", "/settings",
	} {
		_, m := c.api("GET", path, key, nil)
		b, _ := json.Marshal(m)
		parts = append(parts, path+"="+string(b))
	}
	_, keys := c.api("GET", "/keys", key, nil)
	for _, k := range keys["keys"].([]any) {
		k := k.(map[string]any)
		parts = append(parts, fmt.Sprintf("key %v revoked=%v", k["id"], k["revoked_at"]))
	}
	return strings.Join(parts, "\n")
}

// TestRevokedKeyIsRefusedByEveryAPIProcess: the API processes cache a
// key's check, but a key revoked through one (here v1's) is refused by it
// at once and by the other (v2's) within a second; so are the keys of a
// tenant the operator disables from the CLI.
func TestRevokedKeyIsRefusedByEveryAPIProcess(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	first := c.tenant("keyco")
	second := c.must(201, "POST", "/keys", first, nil)["key"].(string)
	// Both processes have checked (and cached) both keys.
	for _, v := range []string{"v1", "v2"} {
		for _, k := range []string{first, second} {
			c.mustV(v, 200, "GET", "/settings", k, nil)
		}
	}
	var firstID any
	for _, k := range c.must(200, "GET", "/keys", second, nil)["keys"].([]any) {
		if firstID == nil || k.(map[string]any)["id"].(float64) < firstID.(float64) {
			firstID = k.(map[string]any)["id"]
		}
	}
	c.must(204, "DELETE", fmt.Sprintf("/keys/%v", firstID), second, nil)
	revoked := time.Now()
	if status, _ := c.apiV("v1", "GET", "/settings", first, nil); status != 401 {
		t.Fatalf("the process that revoked the key answered %d for it, want 401", status)
	}
	testenv.Eventually(t, "v2 refuses the revoked key", time.Second, func() bool {
		status, _ := c.apiV("v2", "GET", "/settings", first, nil)
		return status == 401
	})
	t.Logf("v2 refused the revoked key %v after the revocation", time.Since(revoked).Round(time.Millisecond))
	c.mustV("v2", 200, "GET", "/settings", second, nil)

	if out, err := exec.Command(kaiwaBin, "tenant", "disable", "keyco", "--mysql-dsn", c.dsn, "--nats-url", c.nats).CombinedOutput(); err != nil {
		t.Fatalf("kaiwa tenant disable: %v\n%s", err, out)
	}
	for _, v := range []string{"v1", "v2"} {
		testenv.Eventually(t, v+" refuses the disabled tenant's key", time.Second, func() bool {
			status, _ := c.apiV(v, "GET", "/settings", second, nil)
			return status == 401
		})
	}
}
