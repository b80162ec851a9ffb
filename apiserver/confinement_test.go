package apiserver

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
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
		"POST /messages":             func(seededTenant) confinedCall { return confinedCall{"/messages", `{"text":"from B"}`, 201} },
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
			before := e.stateOf("tenantA")
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
			if after := e.stateOf("tenantA"); after != before {
				t.Errorf("tenant A's data changed\nbefore %s\nafter  %s", before, after)
			}
			for _, ctl := range e.bus.Controls()[controls:] {
				if ctl.Tenant != "tenantB" {
					t.Errorf("B's call published a control for %s: %+v", ctl.Tenant, ctl)
				}
			}
			for _, m := range e.bus.Messages()[messages:] {
				if m.Tenant != "tenantB" {
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
}

// seedTenantA gives tenant A, through the API, a closed channel alobby
// with a member and messages, an open channel, a user token, an NG list, a
// ban and a mute, a second API key and its own settings. Every text of it
// holds "secretA".
func seedTenantA(e *testEnv) seededTenant {
	e.t.Helper()
	a := e.keyA
	e.tenants.setSettings("tenantA", kaiwa.Settings{MaxTextLen: 4321})
	must := func(method, target, body string, status int) *jsonRecorder {
		e.t.Helper()
		rec := e.do(method, "/v1/api"+target, a, body)
		wantStatus(e.t, rec, status)
		return &jsonRecorder{rec.Body.Bytes()}
	}
	must("PUT", "/channels/alobby", `{"kind":"closed","title":"secretA-title"}`, 201)
	must("PUT", "/channels/aopen", `{"kind":"open","title":"secretA-open"}`, 201)
	must("PUT", "/channels/alobby/members/amember", "", 201)
	must("POST", "/tokens", `{"user":"amember","name":"secretA-name","ttl_seconds":600,"join":["*"]}`, 201)
	var posted postedResponse
	must("POST", "/channels/alobby/messages", `{"text":"secretA-text","data":{"k":"secretA-data"}}`, 201).into(e.t, &posted)
	e.bus.logMessage("tenantA", "alobby", "amember", "secretA-chat", kaiwa.Now())
	must("POST", "/users/amember/messages", `{"text":"secretA-inbox"}`, 201)
	must("PUT", "/ngwords", `{"words":["secretA-ng"],"allow":["secretA-allow"],"policy":"mask"}`, 200)
	must("PUT", "/users/amember/ban", `{"reason":"secretA-reason"}`, 200)
	must("PUT", "/users/amember/mute", `{"reason":"secretA-mute"}`, 200)
	must("POST", "/keys", "", 201)
	var keys keysResponse
	must("GET", "/keys", "", 200).into(e.t, &keys)
	// The second key, so that revoking it leaves A's key of the tests.
	return seededTenant{messageID: posted.ID, keyID: strconv.FormatInt(keys.Keys[1].ID, 10)}
}

// jsonRecorder holds a response body to decode.
type jsonRecorder struct{ body []byte }

func (r *jsonRecorder) into(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// stateOf returns everything the fakes keep for tenant, as JSON, to
// compare before and after a call.
func (e *testEnv) stateOf(tenant kaiwa.TenantID) string {
	e.t.Helper()
	type channel struct {
		Channel kaiwa.Channel
		Members []string
	}
	var state struct {
		Channels  []channel
		Tokens    []kaiwa.Identity
		Log       []kaiwa.Message
		Stream    []string
		NG        any
		Sanctions any
		Keys      []kaiwa.APIKey
		Settings  kaiwa.Settings
		Events    []kaiwa.Event
	}

	e.channels.mu.Lock()
	for _, c := range e.channels.channels[tenant] {
		var members []string
		for u := range c.members {
			members = append(members, u)
		}
		sort.Strings(members)
		state.Channels = append(state.Channels, channel{c.ch, members})
	}
	e.channels.mu.Unlock()
	sort.Slice(state.Channels, func(i, j int) bool { return state.Channels[i].Channel.Name < state.Channels[j].Channel.Name })

	e.tokens.mu.Lock()
	for _, id := range e.tokens.tokens {
		if id.Tenant == tenant {
			state.Tokens = append(state.Tokens, id)
		}
	}
	e.tokens.mu.Unlock()
	sort.Slice(state.Tokens, func(i, j int) bool { return state.Tokens[i].ExpiresAt.Before(state.Tokens[j].ExpiresAt) })

	state.Log = e.log.snapshot(tenant)
	e.bus.mu.Lock()
	for k := range e.bus.stream {
		if k.tenant == tenant {
			state.Stream = append(state.Stream, k.ch+"/"+k.id)
		}
	}
	e.bus.mu.Unlock()
	sort.Strings(state.Stream)

	e.ng.mu.Lock()
	state.NG = e.ng.lists[tenant]
	e.ng.mu.Unlock()
	e.sanctions.mu.Lock()
	state.Sanctions = e.sanctions.sanctions[tenant]
	e.sanctions.mu.Unlock()

	e.tenants.mu.Lock()
	for _, k := range e.tenants.keys {
		if k.tenant == tenant {
			state.Keys = append(state.Keys, k.info)
		}
	}
	state.Settings = e.tenants.tenants[tenant].Settings
	e.tenants.mu.Unlock()
	sort.Slice(state.Keys, func(i, j int) bool { return state.Keys[i].ID < state.Keys[j].ID })

	state.Events = e.events.ofTenant(tenant)

	out, err := json.Marshal(state)
	if err != nil {
		e.t.Fatal(err)
	}
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
	for _, target := range []string{"/v1/api/messages?user=amember", "/v1/api/events?user=amember", "/v1/api/settings"} {
		rec := e.do("GET", target, e.keyA, "")
		wantStatus(t, rec, http.StatusOK)
		if !strings.Contains(rec.Body.String(), "secretA") && !strings.Contains(rec.Body.String(), "4321") {
			t.Errorf("%s: tenant A does not see its own data: %s", target, rec.Body)
		}
	}
}
