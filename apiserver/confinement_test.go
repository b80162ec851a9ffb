package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// confinedCall is what tenant B sends on one route, naming tenant A's
// things, and the status it must get.
type confinedCall struct {
	target, body string
	status       int
}

// TestEveryRouteIsConfinedToItsTenant calls every route the server
// registered with tenant B's key, naming tenant A's channels, users,
// messages, NG words and keys, each in a fresh server holding A's data.
// Nothing of A's may change or show in the answer, and everything B's call
// publishes or records is B's. A route without an entry in the table fails
// the test, so a new route must say how it is confined.
func TestEveryRouteIsConfinedToItsTenant(t *testing.T) {
	t.Parallel()
	calls := map[string]func(a seededTenant) confinedCall{
		"GET /openapi.json": func(seededTenant) confinedCall { return confinedCall{"/openapi.json", "", 200} },
		"POST /tokens": func(seededTenant) confinedCall {
			return confinedCall{"/tokens", `{"user":"amember","ttl_seconds":60,"join":["*"]}`, 201}
		},
		"DELETE /users/:user/tokens": func(seededTenant) confinedCall { return confinedCall{"/users/amember/tokens", "", 204} },
		"PUT /channels/:ch": func(seededTenant) confinedCall {
			return confinedCall{"/channels/alobby", `{"kind":"open","title":"B's"}`, 201}
		},
		"DELETE /channels/:ch":      func(seededTenant) confinedCall { return confinedCall{"/channels/alobby", "", 404} },
		"GET /channels/:ch/members": func(seededTenant) confinedCall { return confinedCall{"/channels/alobby/members", "", 404} },
		"PUT /channels/:ch/members/:user": func(seededTenant) confinedCall {
			return confinedCall{"/channels/alobby/members/intruder", "", 404}
		},
		"DELETE /channels/:ch/members/:user": func(seededTenant) confinedCall {
			return confinedCall{"/channels/alobby/members/amember", "", 404}
		},
		"POST /channels/:ch/messages": func(seededTenant) confinedCall {
			return confinedCall{"/channels/alobby/messages", `{"text":"from B"}`, 404}
		},
		"GET /channels/:ch/messages": func(seededTenant) confinedCall { return confinedCall{"/channels/alobby/messages", "", 200} },
		"DELETE /channels/:ch/messages/:id": func(a seededTenant) confinedCall {
			return confinedCall{"/channels/alobby/messages/" + a.messageID, "", 404}
		},
		"POST /users/:user/messages": func(seededTenant) confinedCall {
			return confinedCall{"/users/amember/messages", `{"text":"from B"}`, 201}
		},
		"POST /messages": func(seededTenant) confinedCall { return confinedCall{"/messages", `{"text":"from B"}`, 201} },
		"POST /messages/batch": func(seededTenant) confinedCall {
			// A's channel is not B's: the one message is refused on its own.
			return confinedCall{"/messages/batch", `{"messages":[{"ch":"alobby","text":"from B"},{"user":"amember","text":"from B"}]}`, 200}
		},
		"GET /messages":              func(seededTenant) confinedCall { return confinedCall{"/messages?user=amember", "", 200} },
		"GET /ngwords":               func(seededTenant) confinedCall { return confinedCall{"/ngwords", "", 200} },
		"PUT /ngwords":               func(seededTenant) confinedCall { return confinedCall{"/ngwords", `{"words":[]}`, 200} },
		"POST /ngwords":              func(seededTenant) confinedCall { return confinedCall{"/ngwords", `{"policy":"mask"}`, 200} },
		"DELETE /ngwords/:word":      func(seededTenant) confinedCall { return confinedCall{"/ngwords/secretA-ng", "", 404} },
		"POST /users/:user/kick":     func(seededTenant) confinedCall { return confinedCall{"/users/amember/kick", "", 204} },
		"PUT /users/:user/ban":       func(seededTenant) confinedCall { return confinedCall{"/users/amember/ban", "", 200} },
		"DELETE /users/:user/ban":    func(seededTenant) confinedCall { return confinedCall{"/users/amember/ban", "", 404} },
		"PUT /users/:user/mute":      func(seededTenant) confinedCall { return confinedCall{"/users/amember/mute", "", 200} },
		"DELETE /users/:user/mute":   func(seededTenant) confinedCall { return confinedCall{"/users/amember/mute", "", 404} },
		"GET /users/:user/sanctions": func(seededTenant) confinedCall { return confinedCall{"/users/amember/sanctions", "", 200} },
		"GET /events":                func(seededTenant) confinedCall { return confinedCall{"/events?user=amember", "", 200} },
		"GET /keys":                  func(seededTenant) confinedCall { return confinedCall{"/keys", "", 200} },
		"POST /keys":                 func(seededTenant) confinedCall { return confinedCall{"/keys", "", 201} },
		"DELETE /keys/:id":           func(a seededTenant) confinedCall { return confinedCall{"/keys/" + a.keyID, "", 404} },
		"GET /settings":              func(seededTenant) confinedCall { return confinedCall{"/settings", "", 200} },
		"GET /stats":                 func(seededTenant) confinedCall { return confinedCall{"/stats", "", 200} },
		"GET /messages/search": func(seededTenant) confinedCall {
			return confinedCall{"/messages/search?q=secret&ch=alobby", "", 200}
		},
		"GET /channels/:ch/messages/:id/edits": func(a seededTenant) confinedCall {
			return confinedCall{"/channels/alobby/messages/" + a.messageID + "/edits", "", 200}
		},
		"PUT /users/:user/blocks/:other": func(seededTenant) confinedCall {
			return confinedCall{"/users/amember/blocks/intruder", "", 204}
		},
		"DELETE /users/:user/blocks/:other": func(seededTenant) confinedCall {
			return confinedCall{"/users/amember/blocks/intruder", "", 204}
		},
		"GET /users/:user/blocks":  func(seededTenant) confinedCall { return confinedCall{"/users/amember/blocks", "", 200} },
		"GET /users/:user/cursors": func(seededTenant) confinedCall { return confinedCall{"/users/amember/cursors", "", 200} },
		"DELETE /tokens/:jti":      func(seededTenant) confinedCall { return confinedCall{"/tokens/ajti", "", 204} },
		"GET /signing-keys":        func(seededTenant) confinedCall { return confinedCall{"/signing-keys", "", 200} },
		"POST /signing-keys": func(seededTenant) confinedCall {
			return confinedCall{"/signing-keys", `{"kid":"k1","alg":"HS256","secret":"0123456789abcdef0123456789abcdef"}`, 201}
		},
		"DELETE /signing-keys/:kid": func(seededTenant) confinedCall { return confinedCall{"/signing-keys/k1", "", 404} },
		"POST /webhooks": func(seededTenant) confinedCall {
			return confinedCall{"/webhooks", `{"url":"https://127.0.0.1:9/hook","events":["message"]}`, 201}
		},
		"GET /before-send": func(seededTenant) confinedCall { return confinedCall{"/before-send", "", 200} },
		"PUT /before-send": func(seededTenant) confinedCall {
			return confinedCall{"/before-send", `{"hooks":[{"prefix":"*","url":"https://127.0.0.1:9/h","secret":"0123456789abcdef"}]}`, 204}
		},
		"GET /webhooks":                func(seededTenant) confinedCall { return confinedCall{"/webhooks", "", 200} },
		"GET /channels/:ch/presence":   func(seededTenant) confinedCall { return confinedCall{"/channels/alobby/presence", "", 200} },
		"GET /users/:user/online":      func(seededTenant) confinedCall { return confinedCall{"/users/amember/online", "", 200} },
		"DELETE /webhooks/:id":         func(seededTenant) confinedCall { return confinedCall{"/webhooks/wh_a", "", 404} },
		"GET /webhooks/:id/deliveries": func(seededTenant) confinedCall { return confinedCall{"/webhooks/wh_a/deliveries", "", 404} },
	}

	routes := newTestEnv(t).handler.(*echo.Echo).Routes()
	seen := map[string]bool{}
	for _, r := range routes {
		path, ok := strings.CutPrefix(r.Path, "/v1/api")
		if !ok {
			continue
		}
		name := r.Method + " " + path
		seen[name] = true
		call, ok := calls[name]
		if !ok {
			t.Errorf("route %s has no entry in the confinement table", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			a := seedTenantA(e)
			before := e.stateOf(e.tenantA, a)
			controls, messages := len(e.bus.Controls()), len(e.bus.Messages())
			c := call(a)

			rec := e.do(r.Method, "/v1/api"+c.target, e.keyB, c.body)
			if rec.Code != c.status {
				t.Errorf("status %d, want %d; body %s", rec.Code, c.status, rec.Body)
			}
			// What B named in its path may be echoed back to B.
			body := rec.Body.String()
			for _, named := range strings.FieldsFunc(c.target, func(r rune) bool { return strings.ContainsRune("/?&=", r) }) {
				body = strings.ReplaceAll(body, named, "")
			}
			for _, secret := range []string{"secretA", "tenantA", "4321", a.messageID + `"`} {
				if strings.Contains(body, secret) {
					t.Errorf("tenant B saw %q of tenant A: %s", secret, body)
				}
			}
			if after := e.stateOf(e.tenantA, a); after != before {
				t.Errorf("tenant A's data changed\nbefore %s\nafter  %s", before, after)
			}
			for _, ctl := range e.bus.Controls()[controls:] {
				if ctl.Tenant != e.tenantB {
					t.Errorf("B's call published a control for %s: %+v", ctl.Tenant, ctl)
				}
			}
			for _, m := range e.bus.Messages()[messages:] {
				if m.Tenant != e.tenantB {
					t.Errorf("B's call published a message for %s: %+v", m.Tenant, m)
				}
			}
			if name == "GET /keys" {
				var keys keysResponse
				decode(t, rec, &keys)
				for _, k := range keys.Keys {
					if strconv.FormatInt(k.ID, 10) == a.keyID {
						t.Errorf("tenant B lists tenant A's key %d", k.ID)
					}
				}
			}
		})
	}
	for name := range calls {
		if !seen[name] {
			t.Errorf("the confinement table names %s, which is no route", name)
		}
	}
}

// seededTenant names some of what [seedTenantA] made.
type seededTenant struct {
	messageID string // a message of channel alobby
	keyID     string // an active API key
	token     string // amember's token
}

// seedTenantA gives tenant A, through the API, a closed channel alobby
// with a member and messages, an open channel, a user token, an NG list, a
// ban and a mute, a second API key and its own settings. Every text of it
// holds "secretA". It returns once the log writer has written A's
// messages.
func seedTenantA(e *testEnv) seededTenant {
	e.t.Helper()
	a := e.keyA
	e.setSettings(e.tenantA, kaiwa.Settings{MaxTextLen: 4321})
	must := func(method, target, body string, status int) *jsonRecorder {
		e.t.Helper()
		rec := e.do(method, "/v1/api"+target, a, body)
		wantStatus(e.t, rec, status)
		return &jsonRecorder{rec.Body.Bytes()}
	}
	must("PUT", "/channels/alobby", `{"kind":"closed","title":"secretA-title"}`, 201)
	must("PUT", "/channels/aopen", `{"kind":"open","title":"secretA-open"}`, 201)
	must("PUT", "/channels/alobby/members/amember", "", 201)
	var tok tokenResponse
	must("POST", "/tokens", `{"user":"amember","name":"secretA-name","ttl_seconds":600,"join":["*"]}`, 201).into(e.t, &tok)
	var posted, inbox postedResponse
	must("POST", "/channels/alobby/messages", `{"text":"secretA-text","data":{"k":"secretA-data"}}`, 201).into(e.t, &posted)
	e.logMessage(e.tenantA, "alobby", "amember", "secretA-chat", kaiwa.Now())
	must("POST", "/users/amember/messages", `{"text":"secretA-inbox"}`, 201).into(e.t, &inbox)
	must("PUT", "/ngwords", `{"words":["secretA-ng"],"allow":["secretA-allow"],"policy":"mask"}`, 200)
	must("PUT", "/users/amember/ban", `{"reason":"secretA-reason"}`, 200)
	must("PUT", "/users/amember/mute", `{"reason":"secretA-mute"}`, 200)
	must("POST", "/keys", "", 201)
	var keys keysResponse
	must("GET", "/keys", "", 200).into(e.t, &keys)
	e.waitLogged(e.tenantA, posted.ID)
	e.waitLogged(e.tenantA, inbox.ID)
	// The second key, so that revoking it leaves A's key of the tests.
	return seededTenant{messageID: posted.ID, keyID: strconv.FormatInt(keys.Keys[1].ID, 10), token: tok.Token}
}

// jsonRecorder holds a response body to decode.
type jsonRecorder struct{ body []byte }

func (r *jsonRecorder) into(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// stateOf returns everything the store and the stream keep for tenant,
// seeded as a, and the events recorded for it, as JSON, to compare
// before and after a call.
func (e *testEnv) stateOf(tenant kaiwa.TenantID, a seededTenant) string {
	e.t.Helper()
	ctx := context.Background()
	type channel struct {
		Channel kaiwa.Channel
		Members []string
		Stream  []string
	}
	var state struct {
		Channels  []channel
		Inbox     []string
		Token     any
		Log       []kaiwa.Message
		NG        kaiwa.NGList
		Sanctions []kaiwa.Sanction
		Keys      []kaiwa.APIKey
		Settings  kaiwa.Settings
		Events    []kaiwa.Event
	}
	check := func(err error) {
		e.t.Helper()
		if err != nil {
			e.t.Fatal(err)
		}
	}
	stream := func(ch string) []string {
		e.t.Helper()
		msgs, err := e.bus.b.History(ctx, tenant, ch, "", 100)
		check(err)
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		return ids
	}
	chs, err := shared.store.Channels(ctx, tenant, "")
	check(err)
	for _, c := range chs {
		members, err := shared.store.Members(ctx, tenant, c.Name)
		check(err)
		state.Channels = append(state.Channels, channel{c, members, stream(c.Name)})
	}
	state.Inbox = stream(kaiwa.Inbox("amember"))
	if id, err := shared.store.ResolveToken(ctx, a.token); err != nil {
		state.Token = err.Error()
	} else {
		state.Token = id
	}
	state.Log = e.logged(tenant)
	state.NG, err = shared.store.NGList(ctx, tenant)
	check(err)
	state.Sanctions, err = shared.store.Sanctions(ctx, tenant, "amember")
	check(err)
	state.Keys, err = shared.store.APIKeys(ctx, tenant)
	check(err)
	state.Settings, err = shared.store.TenantSettings(ctx, tenant)
	check(err)
	state.Events = e.events.ofTenant(tenant)

	out, err := json.Marshal(state)
	check(err)
	return string(out)
}

// TestConfinementTableSeesTenantA checks the seeded data is what the
// confinement test says it is: tenant A reaches it with its own key on the
// same calls where tenant B gets nothing.
func TestConfinementTableSeesTenantA(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a := seedTenantA(e)
	for _, c := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/v1/api/channels/alobby/members", http.StatusOK},
		{"DELETE", "/v1/api/users/amember/mute", http.StatusNoContent},
		{"DELETE", "/v1/api/ngwords/secretA-ng", http.StatusOK},
		{"DELETE", "/v1/api/channels/alobby/messages/" + a.messageID, http.StatusNoContent},
		{"DELETE", "/v1/api/keys/" + a.keyID, http.StatusNoContent},
	} {
		wantStatus(t, e.do(c.method, c.target, e.keyA, ""), c.status)
	}
	// Events reach the log through the log writer: wait for them.
	for _, target := range []string{"/v1/api/messages?user=amember", "/v1/api/events?user=amember", "/v1/api/settings"} {
		testenv.Eventually(t, target+" shows tenant A its own data", 5*time.Second, func() bool {
			rec := e.do("GET", target, e.keyA, "")
			wantStatus(t, rec, http.StatusOK)
			return strings.Contains(rec.Body.String(), "secretA") || strings.Contains(rec.Body.String(), "4321")
		})
	}
}
