package apiserver

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func TestPostMessage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "world", "open")
	start := kaiwa.Now()
	data := `{ "reward" : {"gold":100},  "x":[1, 2] }`
	rec := e.do("POST", "/v1/api/channels/world/messages", e.keyA, `{"text":"Server restarts in 5 min","data":`+data+`}`)
	wantStatus(t, rec, http.StatusCreated)
	var got postedResponse
	decode(t, rec, &got)
	if got.ID == "" || got.Seq == 0 {
		t.Errorf("response %+v lacks id or seq", got)
	}
	msgs := e.bus.Messages()
	if len(msgs) != 1 {
		t.Fatalf("published %d messages", len(msgs))
	}
	m := msgs[0]
	if m.Tenant != "tenantA" || m.Channel != "world" || m.Text != "Server restarts in 5 min" || !m.System ||
		m.From != "" || m.ID != got.ID || m.Seq != got.Seq {
		t.Errorf("published %+v", m)
	}
	if string(m.Data) != data {
		t.Errorf("data %q, want the bytes as received %q", m.Data, data)
	}
	if m.TS < start || m.TS > kaiwa.Now() {
		t.Errorf("ts %d not the time of the request", m.TS)
	}

	// Data alone; text alone with data null; a direct channel, encoded.
	wantStatus(t, e.do("POST", "/v1/api/channels/world/messages", e.keyA, `{"data":{"event":"raid"}}`), http.StatusCreated)
	wantStatus(t, e.do("POST", "/v1/api/channels/world/messages", e.keyA, `{"text":"hi","data":null}`), http.StatusCreated)
	wantStatus(t, e.do("POST", "/v1/api/channels/dm%3Aalice%3Abob/messages", e.keyA, `{"text":"to both"}`), http.StatusCreated)
	msgs = e.bus.Messages()
	if msgs[2].Data != nil {
		t.Errorf("data null published as %q", msgs[2].Data)
	}
	if msgs[3].Channel != "dm:alice:bob" || !msgs[3].System {
		t.Errorf("direct message %+v", msgs[3])
	}
}

func TestPostMessageRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "world", "open")
	e.tenants.setSettings("tenantA", kaiwa.Settings{MaxTextLen: 5, MaxDataBytes: 16})
	tests := []struct {
		name, target, body string
		status             int
		code               kaiwa.Code
	}{
		{"no channel", "/v1/api/channels/nowhere/messages", `{"text":"x"}`, 404, kaiwa.CodeNotFound},
		{"malformed dm", "/v1/api/channels/dm:bob:alice/messages", `{"text":"x"}`, 400, kaiwa.CodeBadRequest},
		{"bad channel", "/v1/api/channels/w%20w/messages", `{"text":"x"}`, 400, kaiwa.CodeBadRequest},
		{"empty", "/v1/api/channels/world/messages", `{}`, 400, kaiwa.CodeBadRequest},
		{"empty text, null data", "/v1/api/channels/world/messages", `{"text":"","data":null}`, 400, kaiwa.CodeBadRequest},
		{"text over tenant limit", "/v1/api/channels/world/messages", `{"text":"ありがとう!"}`, 413, kaiwa.CodeTooLarge},
		{"data over tenant limit", "/v1/api/channels/world/messages", `{"data":{"k":"0123456789abcdef"}}`, 413, kaiwa.CodeTooLarge},
		{"data not an object", "/v1/api/channels/world/messages", `{"data":[1,2]}`, 400, kaiwa.CodeBadRequest},
		{"data a string", "/v1/api/channels/world/messages", `{"text":"a","data":"{}"}`, 400, kaiwa.CodeBadRequest},
		{"text a number", "/v1/api/channels/world/messages", `{"text":5}`, 400, kaiwa.CodeBadRequest},
		{"invalid utf-8 text", "/v1/api/channels/world/messages", "{\"text\":\"\xc3\x28\"}", 400, kaiwa.CodeBadRequest},
		{"invalid json", "/v1/api/channels/world/messages", `{"text":"a"`, 400, kaiwa.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.do("POST", tt.target, e.keyA, tt.body), tt.status, tt.code)
		})
	}
	if n := len(e.bus.Messages()); n != 0 {
		t.Errorf("%d messages published from bad requests", n)
	}

	// Within the limits, the same tenant's message goes through.
	wantStatus(t, e.do("POST", "/v1/api/channels/world/messages", e.keyA, `{"text":"ありがとう"}`), http.StatusCreated)

	e.bus.Fail = kaiwa.Errorf(kaiwa.CodeUnavailable, "stream unavailable")
	wantError(t, e.do("POST", "/v1/api/channels/world/messages", e.keyA, `{"text":"x"}`), 503, kaiwa.CodeUnavailable)
}

// TestBodyLimit sends bodies over the limit with and without a
// Content-Length, through a real HTTP server.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	e := newTestEnv(t, func(c *Config) { c.BodyLimit = limit })
	e.putChannel(e.keyA, "world", "open")
	e.tenants.setSettings("tenantA", kaiwa.Settings{MaxTextLen: 2 * limit})
	body := func(n int) string { // a message body of exactly n bytes
		return `{"text":"` + strings.Repeat("a", n-len(`{"text":""}`)) + `"}`
	}

	wantError(t, e.do("POST", "/v1/api/channels/world/messages", e.keyA, body(limit+1)), 413, kaiwa.CodeTooLarge)
	wantStatus(t, e.do("POST", "/v1/api/channels/world/messages", e.keyA, body(limit)), http.StatusCreated)

	srv := httptest.NewServer(e.handler)
	t.Cleanup(srv.Close)
	for _, chunked := range []bool{false, true} {
		var r io.Reader = strings.NewReader(body(2 * limit))
		if chunked {
			// A reader of unknown length: the client sends no Content-Length.
			r = io.MultiReader(r)
		}
		req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/v1/api/channels/world/messages", r)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.keyA)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(got), `"code":"too_large"`) {
			t.Errorf("chunked=%v: %d %s", chunked, resp.StatusCode, got)
		}
	}
	if n := len(e.bus.Messages()); n != 1 {
		t.Errorf("%d messages published, want 1", n)
	}
}

func TestListMessages(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	var all []kaiwa.Message
	for i := range 7 {
		from := []string{"alice", "bob"}[i%2]
		all = append(all, e.bus.logMessage("tenantA", "guild:1", from, fmt.Sprintf("m%d", i), base+int64(i)*1000))
	}
	e.bus.logMessage("tenantA", "other", "alice", "elsewhere", base)
	e.bus.logMessage("tenantB", "guild:1", "alice", "tenant B", base)
	sys := e.do("POST", "/v1/api/channels/dm:alice:bob/messages", e.keyA, `{"text":"sys","data":{"k":1}}`)
	wantStatus(t, sys, http.StatusCreated)

	list := func(target string) pageResponse {
		t.Helper()
		rec := e.do("GET", target, e.keyA, "")
		wantStatus(t, rec, http.StatusOK)
		var p pageResponse
		decode(t, rec, &p)
		return p
	}
	texts := func(p pageResponse) string {
		var s []string
		for _, m := range p.Messages {
			s = append(s, m.Text)
		}
		return strings.Join(s, ",")
	}

	// Oldest first, paged with next as after.
	p := list("/v1/api/channels/guild:1/messages?limit=3")
	if texts(p) != "m0,m1,m2" || p.Next != all[2].ID {
		t.Fatalf("page 1: %s next %q", texts(p), p.Next)
	}
	p = list("/v1/api/channels/guild%3A1/messages?limit=3&after=" + p.Next)
	if texts(p) != "m3,m4,m5" {
		t.Fatalf("page 2: %s", texts(p))
	}
	p = list("/v1/api/channels/guild:1/messages?limit=3&after=" + p.Next)
	if texts(p) != "m6" || p.Next != "" {
		t.Fatalf("page 3: %s next %q", texts(p), p.Next)
	}

	// Newest first, paged with next as before.
	p = list("/v1/api/channels/guild:1/messages?order=desc&limit=4")
	if texts(p) != "m6,m5,m4,m3" {
		t.Fatalf("desc page 1: %s", texts(p))
	}
	p = list("/v1/api/channels/guild:1/messages?order=desc&limit=4&before=" + p.Next)
	if texts(p) != "m2,m1,m0" || p.Next != "" {
		t.Fatalf("desc page 2: %s next %q", texts(p), p.Next)
	}

	// Filters: user, and time as milliseconds or RFC 3339.
	if p = list("/v1/api/channels/guild:1/messages?user=bob"); texts(p) != "m1,m3,m5" {
		t.Errorf("user=bob: %s", texts(p))
	}
	since, until := base+2000, base+5000
	if p = list(fmt.Sprintf("/v1/api/channels/guild:1/messages?since=%d&until=%d", since, until)); texts(p) != "m2,m3,m4" {
		t.Errorf("since/until ms: %s", texts(p))
	}
	q := url.Values{
		"since": {time.UnixMilli(since).In(time.FixedZone("JST", 9*3600)).Format(time.RFC3339)},
		"until": {time.UnixMilli(until).UTC().Format(time.RFC3339Nano)},
	}
	if p = list("/v1/api/channels/guild:1/messages?" + q.Encode()); texts(p) != "m2,m3,m4" {
		t.Errorf("since/until RFC 3339 %s: %s", q.Encode(), texts(p))
	}
	// A '+' sent unescaped arrives as a space and still parses.
	raw := "since=" + time.UnixMilli(since).In(time.FixedZone("JST", 9*3600)).Format(time.RFC3339)
	if p = list("/v1/api/channels/guild:1/messages?" + raw); texts(p) != "m2,m3,m4,m5,m6" {
		t.Errorf("%s: %s", raw, texts(p))
	}

	// Every field of a message, and a system message's.
	p = list("/v1/api/channels/guild:1/messages?limit=1")
	want := messageJSON{ID: all[0].ID, Seq: all[0].Seq, Channel: "guild:1", From: "alice", Name: "ALICE", Text: "m0", TS: base}
	if got := p.Messages[0]; got.ID != want.ID || got.Seq != want.Seq || got.Channel != want.Channel ||
		got.From != want.From || got.Name != want.Name || got.Text != want.Text || got.TS != want.TS || got.System {
		t.Errorf("message %+v, want %+v", got, want)
	}
	rec := e.do("GET", "/v1/api/channels/dm%3Aalice%3Abob/messages", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	var rawPage map[string][]map[string]any
	decode(t, rec, &rawPage)
	if ms := rawPage["messages"]; len(ms) != 1 || ms[0]["system"] != true || ms[0]["from"] != nil ||
		fmt.Sprint(ms[0]["data"]) != "map[k:1]" || ms[0]["ch"] != "dm:alice:bob" {
		t.Errorf("system message JSON %v", ms)
	}

	// The query reached the log as asked, with the default limit.
	list("/v1/api/channels/guild:1/messages")
	if got := e.log.Last; got.Limit != DefaultPageLimit || got.Channel != "guild:1" || got.Desc {
		t.Errorf("default query %+v", got)
	}

	// An empty page is an empty array.
	rec = e.do("GET", "/v1/api/channels/silent/messages", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.String() != "{\"messages\":[]}\n" {
		t.Errorf("empty page %q", rec.Body)
	}
}

func TestListMessagesRefusesBadParameters(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *Config) { c.MaxPageLimit = 200 })
	bad := []string{
		"limit=0", "limit=-1", "limit=201", "limit=ten", "limit=1.5", "limit=99999999999999999999",
		"since=yesterday", "since=2025-13-01T00:00:00Z", "until=2025-01-01", "since=-5",
		"since=1741000000000&until=1740000000000",
		"until=99999999999999999",
		"user=a%20b", "user=" + strings.Repeat("u", 65), "user=x'--",
		"order=newest", "order=DESC",
		"before=" + strings.Repeat("m", 129), "after=a%0Ab", "before=a%20b",
	}
	for _, q := range bad {
		t.Run(q, func(t *testing.T) {
			wantError(t, e.do("GET", "/v1/api/channels/lobby/messages?"+q, e.keyA, ""), 400, kaiwa.CodeBadRequest)
		})
	}
	wantStatus(t, e.do("GET", "/v1/api/channels/lobby/messages?limit=200", e.keyA, ""), http.StatusOK)
	wantError(t, e.do("GET", "/v1/api/channels/bad%2F/messages", e.keyA, ""), 400, kaiwa.CodeBadRequest)

	e.log.Fail = kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable")
	wantError(t, e.do("GET", "/v1/api/channels/lobby/messages", e.keyA, ""), 503, kaiwa.CodeUnavailable)
}
