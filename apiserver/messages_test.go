package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/tenants"
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
	if got.ID == "" || got.Seq == 0 || got.Channel != "world" {
		t.Errorf("response %+v lacks id, seq or ch", got)
	}
	msgs := e.bus.Messages()
	if len(msgs) != 1 {
		t.Fatalf("published %d messages", len(msgs))
	}
	m := msgs[0]
	if m.Tenant != e.tenantA || m.Channel != "world" || m.Text != "Server restarts in 5 min" || !m.System ||
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

	// Each message is in the event log, its id in the detail.
	events := e.events.ofTenant(e.tenantA)
	var system []kaiwa.Event
	for _, ev := range events {
		if ev.Type == kaiwa.EventSystem {
			system = append(system, ev)
		}
	}
	if len(system) != 4 || system[0].Channel != "world" || system[3].Channel != "dm:alice:bob" ||
		!strings.Contains(string(system[0].Detail), `"id":"`+got.ID+`"`) {
		t.Errorf("system events %+v", system)
	}

	// A post with a cid, repeated: the same message, posted once.
	var first, again postedResponse
	rec = e.do("POST", "/v1/api/channels/world/messages", e.keyA, `{"text":"once","cid":"gs-42"}`)
	wantStatus(t, rec, http.StatusCreated)
	decode(t, rec, &first)
	rec = e.do("POST", "/v1/api/channels/world/messages", e.keyA, `{"text":"once","cid":"gs-42"}`)
	wantStatus(t, rec, http.StatusCreated)
	decode(t, rec, &again)
	if first.ID != again.ID || first.Seq != again.Seq {
		t.Errorf("a repeated post with a cid: %+v, then %+v", first, again)
	}
	ids := map[string]bool{}
	for _, m := range e.bus.Messages() {
		ids[m.ID] = true
	}
	if len(ids) != 5 {
		t.Errorf("%d messages in the stream, want 5 (the repeat is the same)", len(ids))
	}
	wantError(t, e.do("POST", "/v1/api/channels/world/messages", e.keyA, `{"text":"x","cid":"`+strings.Repeat("c", 65)+`"}`), 400, kaiwa.CodeBadRequest)
}

func TestPostBatch(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "world", "open")
	e.putChannel(e.keyA, "guild", "closed")
	body := `{"messages":[
		{"ch":"world","text":"raid in 5 min","cid":"b-1"},
		{"ch":"nowhere","text":"lost"},
		{"user":"alice","data":{"reward":{"gold":100}},"cid":"b-2"},
		{"ch":"guild","user":"alice","text":"both"},
		{"ch":"guild","text":"` + strings.Repeat("x", 5000) + `"},
		{"user":"bad user","text":"x"},
		{"ch":"guild","text":"welcome","cid":"b-3"}
	]}`
	rec := e.do("POST", "/v1/api/messages/batch", e.keyA, body)
	wantStatus(t, rec, http.StatusOK)
	var got batchResponse
	decode(t, rec, &got)
	if got.Published != 3 || got.Failed != 4 || len(got.Results) != 7 {
		t.Fatalf("published %d, failed %d, %d results: %s", got.Published, got.Failed, len(got.Results), rec.Body)
	}
	wantCodes := []kaiwa.Code{"", kaiwa.CodeNotFound, "", kaiwa.CodeBadRequest, kaiwa.CodeTooLarge, kaiwa.CodeBadRequest, ""}
	wantChannels := []string{"world", "", kaiwa.Inbox("alice"), "", "", "", "guild"}
	for i, r := range got.Results {
		switch {
		case wantCodes[i] != "" && (r.Error == nil || r.Error.Code != wantCodes[i] || r.ID != ""):
			t.Errorf("result %d: %s, want error %s", i, rec.Body, wantCodes[i])
		case wantCodes[i] == "" && (r.Error != nil || r.ID == "" || r.Seq == 0 || r.Channel != wantChannels[i]):
			t.Errorf("result %d: %s, want published to %s", i, rec.Body, wantChannels[i])
		}
	}
	// What was published is what the results say, in order.
	msgs := e.bus.Messages()
	if len(msgs) != 3 {
		t.Fatalf("published %d messages", len(msgs))
	}
	byID := map[string]kaiwa.Message{}
	for _, m := range msgs {
		byID[m.ID] = m
	}
	if m := byID[got.Results[0].ID]; m.Channel != "world" || m.Text != "raid in 5 min" || !m.System || m.From != "" {
		t.Errorf("first message %+v", m)
	}
	if m := byID[got.Results[2].ID]; m.Channel != kaiwa.Inbox("alice") || string(m.Data) != `{"reward":{"gold":100}}` {
		t.Errorf("inbox message %+v", m)
	}
	if got.Results[0].Seq >= got.Results[2].Seq || got.Results[2].Seq >= got.Results[6].Seq {
		t.Errorf("seqs %d, %d, %d not in the order of the batch", got.Results[0].Seq, got.Results[2].Seq, got.Results[6].Seq)
	}
	// One event for the batch, with the ids in order.
	var system []kaiwa.Event
	for _, ev := range e.events.ofTenant(e.tenantA) {
		if ev.Type == kaiwa.EventSystem {
			system = append(system, ev)
		}
	}
	wantDetail := fmt.Sprintf(`"batch":3,"ids":["%s","%s","%s"]`, got.Results[0].ID, got.Results[2].ID, got.Results[6].ID)
	if len(system) != 1 || !strings.Contains(string(system[0].Detail), wantDetail) {
		t.Errorf("system events %+v, want one with %s", system, wantDetail)
	}

	// The same batch again: the posts with a cid are the same messages.
	rec = e.do("POST", "/v1/api/messages/batch", e.keyA, body)
	wantStatus(t, rec, http.StatusOK)
	var again batchResponse
	decode(t, rec, &again)
	for _, i := range []int{0, 2, 6} {
		if again.Results[i].ID == "" || again.Results[i].ID != got.Results[i].ID {
			t.Errorf("result %d sent again: %+v, want %s", i, again.Results[i], got.Results[i].ID)
		}
	}
	if n := len(e.bus.Messages()); n != 6 {
		t.Errorf("%d publishes after the repeat, want 6 (three the same)", n)
	}

	// Batches that are refused whole.
	wantError(t, e.do("POST", "/v1/api/messages/batch", e.keyA, `{"messages":[]}`), 400, kaiwa.CodeBadRequest)
	wantError(t, e.do("POST", "/v1/api/messages/batch", e.keyA, `{}`), 400, kaiwa.CodeBadRequest)
	wantError(t, e.do("POST", "/v1/api/messages/batch", e.keyA, `{"messages":{"ch":"world"}}`), 400, kaiwa.CodeBadRequest)
	over := `{"messages":[` + strings.TrimSuffix(strings.Repeat(`{"ch":"world","text":"x"},`, kaiwa.MaxBatch+1), ",") + `]}`
	wantError(t, e.do("POST", "/v1/api/messages/batch", e.keyA, over), 400, kaiwa.CodeBadRequest)
	// Tenant B cannot post to A's channels.
	rec = e.do("POST", "/v1/api/messages/batch", e.keyB, `{"messages":[{"ch":"world","text":"from B"}]}`)
	wantStatus(t, rec, http.StatusOK)
	var fromB batchResponse
	decode(t, rec, &fromB)
	if fromB.Published != 0 || fromB.Results[0].Error == nil || fromB.Results[0].Error.Code != kaiwa.CodeNotFound {
		t.Errorf("B posting to A's channel: %s", rec.Body)
	}
}

// TestPostBatchBodyLimit: a batch may carry more than the 64 KiB of other
// calls, up to BatchBodyLimit; past it the call is refused whole with
// too_large and posts nothing.
func TestPostBatchBodyLimit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "world", "open")
	batch := func(n, dataBytes int) string {
		item := `{"ch":"world","data":{"pad":"` + strings.Repeat("x", dataBytes) + `"}}`
		return `{"messages":[` + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + `]}`
	}
	// 100 messages of 3 KB of data each: about 300 KB, within the tenant's
	// data limit per message.
	body := batch(100, 3000)
	if len(body) <= DefaultBodyLimit {
		t.Fatalf("the batch is %d bytes, not over the default body limit", len(body))
	}
	rec := e.do("POST", "/v1/api/messages/batch", e.keyA, body)
	wantStatus(t, rec, http.StatusOK)
	var got batchResponse
	decode(t, rec, &got)
	if got.Published != 100 || got.Failed != 0 {
		t.Fatalf("published %d, failed %d", got.Published, got.Failed)
	}
	// Over the batch limit: refused whole.
	before := len(e.bus.Messages())
	body = batch(100, BatchBodyLimit/100)
	wantError(t, e.do("POST", "/v1/api/messages/batch", e.keyA, body), http.StatusRequestEntityTooLarge, kaiwa.CodeTooLarge)
	if n := len(e.bus.Messages()); n != before {
		t.Errorf("%d messages published by a refused batch", n-before)
	}
	// Other calls keep the default limit.
	wantError(t, e.do("POST", "/v1/api/channels/world/messages", e.keyA, `{"text":"`+strings.Repeat("x", DefaultBodyLimit)+`"}`),
		http.StatusRequestEntityTooLarge, kaiwa.CodeTooLarge)
}

func TestPostMessageRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "world", "open")
	e.setSettings(e.tenantA, kaiwa.Settings{MaxTextLen: 5, MaxDataBytes: 16})
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

	e.bus.fail(kaiwa.Errorf(kaiwa.CodeUnavailable, "stream unavailable"))
	wantError(t, e.do("POST", "/v1/api/channels/world/messages", e.keyA, `{"text":"x"}`), 503, kaiwa.CodeUnavailable)
}

// TestBodyLimit sends bodies over the limit with and without a
// Content-Length, through a real HTTP server.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	e := newTestEnv(t, withConfig(func(c *Config) { c.BodyLimit = limit }))
	e.putChannel(e.keyA, "world", "open")
	e.setSettings(e.tenantA, kaiwa.Settings{MaxTextLen: 2 * limit})
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
		all = append(all, e.logMessage(e.tenantA, "guild:1", from, fmt.Sprintf("m%d", i), base+int64(i)*1000))
	}
	e.logMessage(e.tenantA, "other", "alice", "elsewhere", base)
	e.logMessage(e.tenantB, "guild:1", "alice", "tenant B", base)
	sys := e.do("POST", "/v1/api/channels/dm:alice:bob/messages", e.keyA, `{"text":"sys","data":{"k":1}}`)
	wantStatus(t, sys, http.StatusCreated)
	var posted postedResponse
	decode(t, sys, &posted)
	e.waitLogged(e.tenantA, posted.ID)

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
	if got := e.store.lastMessageQuery(); got.Limit != DefaultPageLimit || got.Channel != "guild:1" || got.Desc {
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
	e := newTestEnv(t, withConfig(func(c *Config) { c.MaxPageLimit = 200 }))
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

	e.store.fail(failLog, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	wantError(t, e.do("GET", "/v1/api/channels/lobby/messages", e.keyA, ""), 503, kaiwa.CodeUnavailable)
}

func TestPostUserMessage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	data := `{"gift": {"item": 7}}`
	rec := e.do("POST", "/v1/api/users/alice/messages", e.keyA, `{"text":"You won!","data":`+data+`}`)
	wantStatus(t, rec, http.StatusCreated)
	var got postedResponse
	decode(t, rec, &got)
	if got.ID == "" || got.Seq == 0 || got.Channel != "@alice" {
		t.Errorf("response %+v", got)
	}
	msgs := e.bus.Messages()
	if len(msgs) != 1 {
		t.Fatalf("published %d messages", len(msgs))
	}
	if m := msgs[0]; m.Tenant != e.tenantA || m.Channel != kaiwa.Inbox("alice") || !m.System || m.From != "" ||
		m.Text != "You won!" || string(m.Data) != data || m.ID != got.ID {
		t.Errorf("published %+v", m)
	}
	// Recorded for the user; an inbox is not a channel of the event log.
	ev := e.events.ofTenant(e.tenantA)
	if len(ev) != 1 || ev[0].Type != kaiwa.EventSystem || ev[0].User != "alice" || ev[0].Channel != "" ||
		!strings.Contains(string(ev[0].Detail), `"ch":"@alice"`) {
		t.Errorf("events %+v", ev)
	}
	// The inbox's log reads like a channel's.
	e.waitLogged(e.tenantA, got.ID)
	rec = e.do("GET", "/v1/api/channels/@alice/messages", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	var page pageResponse
	decode(t, rec, &page)
	if len(page.Messages) != 1 || page.Messages[0].ID != got.ID || !page.Messages[0].System {
		t.Errorf("inbox log %+v", page)
	}
	// So does posting to it by its channel name.
	rec = e.do("POST", "/v1/api/channels/%40alice/messages", e.keyA, `{"text":"again"}`)
	wantStatus(t, rec, http.StatusCreated)

	e.setSettings(e.tenantA, kaiwa.Settings{MaxTextLen: 3})
	tests := []struct {
		name, target, body string
		status             int
		code               kaiwa.Code
	}{
		{"bad user", "/v1/api/users/a%20b/messages", `{"text":"x"}`, 400, kaiwa.CodeBadRequest},
		{"inbox as user", "/v1/api/users/@alice/messages", `{"text":"x"}`, 400, kaiwa.CodeBadRequest},
		{"user too long", "/v1/api/users/" + strings.Repeat("u", 65) + "/messages", `{"text":"x"}`, 400, kaiwa.CodeBadRequest},
		{"no body", "/v1/api/users/alice/messages", ``, 400, kaiwa.CodeBadRequest},
		{"empty", "/v1/api/users/alice/messages", `{"text":""}`, 400, kaiwa.CodeBadRequest},
		{"data not an object", "/v1/api/users/alice/messages", `{"data":"x"}`, 400, kaiwa.CodeBadRequest},
		{"text over tenant limit", "/v1/api/users/alice/messages", `{"text":"four"}`, 413, kaiwa.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.do("POST", tt.target, e.keyA, tt.body), tt.status, tt.code)
		})
	}
	if n := len(e.bus.Messages()); n != 2 {
		t.Errorf("%d messages published, want 2", n)
	}
	e.bus.fail(kaiwa.Errorf(kaiwa.CodeUnavailable, "stream unavailable"))
	wantError(t, e.do("POST", "/v1/api/users/alice/messages", e.keyA, `{"text":"x"}`), 503, kaiwa.CodeUnavailable)
	if n := len(e.events.ofTenant(e.tenantA)); n != 2 {
		t.Errorf("%d events, want 2: a failed post is not recorded", n)
	}
}

func TestBroadcast(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var want []string
	for i := range 30 {
		name := fmt.Sprintf("zone:%02d", i)
		e.putChannel(e.keyA, name, "open")
		want = append(want, name)
	}
	e.putChannel(e.keyA, "guild", "closed")
	e.putChannel(e.keyB, "b-world", "open")

	rec := e.do("POST", "/v1/api/messages", e.keyA, `{"text":"Maintenance at 15:00","data":{"kind":"maintenance"}}`)
	wantStatus(t, rec, http.StatusCreated)
	var got broadcastResponse
	decode(t, rec, &got)
	if got.Count != 30 || len(got.Messages) != 30 {
		t.Fatalf("broadcast %+v, want 30 messages", got)
	}
	seqs := map[uint64]bool{}
	for i, m := range got.Messages {
		if m.Channel != want[i] || m.ID == "" || seqs[m.Seq] {
			t.Errorf("message %d: %+v", i, m)
		}
		seqs[m.Seq] = true
	}
	published := map[string]kaiwa.Message{}
	for _, m := range e.bus.Messages() {
		published[m.Channel] = m
		if m.Tenant != e.tenantA || !m.System || m.Text != "Maintenance at 15:00" || string(m.Data) != `{"kind":"maintenance"}` {
			t.Errorf("published %+v", m)
		}
	}
	if len(published) != 30 || published["guild"].Channel != "" || published["b-world"].Channel != "" {
		t.Errorf("published to %d channels, closed and other tenants' included: %v", len(published), published)
	}
	ev := e.events.ofTenant(e.tenantA)
	if last := ev[len(ev)-1]; last.Type != kaiwa.EventSystem || !strings.Contains(string(last.Detail), `"channels":30`) {
		t.Errorf("broadcast event %+v", last)
	}

	// A tenant without open channels reaches none.
	e.putChannel(e.keyB, "b-world", "closed")
	rec = e.do("POST", "/v1/api/messages", e.keyB, `{"text":"hello?"}`)
	wantStatus(t, rec, http.StatusCreated)
	if body := rec.Body.String(); body != "{\"count\":0,\"messages\":[]}\n" {
		t.Errorf("no open channels: %s", body)
	}

	wantError(t, e.do("POST", "/v1/api/messages", e.keyA, `{"text":""}`), 400, kaiwa.CodeBadRequest)
	wantError(t, e.do("POST", "/v1/api/messages", e.keyA, `{"text":"`+strings.Repeat("x", 1001)+`"}`), 413, kaiwa.CodeTooLarge)
	e.store.fail(failChannels, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	wantError(t, e.do("POST", "/v1/api/messages", e.keyA, `{"text":"x"}`), 503, kaiwa.CodeUnavailable)
	e.store.fail(failChannels, nil)
	if n := len(e.bus.Messages()); n != 30 {
		t.Errorf("%d messages after refused broadcasts, want 30", n)
	}
}

func TestBroadcastFailsPartWay(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.putChannel(e.keyA, "a", "open")
	e.putChannel(e.keyA, "b", "open")
	e.bus.failAfterN(1, kaiwa.Errorf(kaiwa.CodeUnavailable, "stream unavailable"))
	msg := wantError(t, e.do("POST", "/v1/api/messages", e.keyA, `{"text":"x"}`), 503, kaiwa.CodeUnavailable)
	if !strings.Contains(msg, "published to 1 of 2 open channels") || !strings.Contains(msg, "stream unavailable") {
		t.Errorf("message %q does not say how far it got", msg)
	}
	if n := len(e.bus.Messages()); n != 1 {
		t.Errorf("%d published", n)
	}

	e.bus.fail(errors.New("nats: connection closed"))
	msg = wantError(t, e.do("POST", "/v1/api/messages", e.keyA, `{"text":"x"}`), 500, kaiwa.CodeInternal)
	if msg != "internal error" || !strings.Contains(e.logs.String(), "published to 0 of 2") {
		t.Errorf("internal failure: message %q, log %q", msg, e.logs.String())
	}
}

func TestListAllMessages(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	for i := range 6 {
		ch := []string{"a", "b", "dm:alice:bob"}[i%3]
		from := []string{"alice", "bob"}[i%2]
		e.logMessage(e.tenantA, ch, from, fmt.Sprintf("m%d", i), base+int64(i)*1000)
	}
	e.logMessage(e.tenantB, "a", "alice", "tenant B", base)

	list := func(query string) (string, string) {
		t.Helper()
		rec := e.do("GET", "/v1/api/messages"+query, e.keyA, "")
		wantStatus(t, rec, http.StatusOK)
		var p pageResponse
		decode(t, rec, &p)
		var s []string
		for _, m := range p.Messages {
			s = append(s, m.Channel+"/"+m.Text)
		}
		return strings.Join(s, ","), p.Next
	}
	if got, next := list(""); got != "a/m0,b/m1,dm:alice:bob/m2,a/m3,b/m4,dm:alice:bob/m5" || next != "" {
		t.Errorf("all: %s next %q", got, next)
	}
	if e.store.lastMessageQuery().Channel != "" || e.store.lastMessageQuery().Limit != DefaultPageLimit {
		t.Errorf("query %+v", e.store.lastMessageQuery())
	}
	got, next := list("?order=desc&limit=4")
	if got != "dm:alice:bob/m5,b/m4,a/m3,dm:alice:bob/m2" || next == "" {
		t.Fatalf("desc page 1: %s next %q", got, next)
	}
	if got, next = list("?order=desc&limit=4&before=" + next); got != "b/m1,a/m0" || next != "" {
		t.Errorf("desc page 2: %s next %q", got, next)
	}
	if got, _ = list("?user=bob"); got != "b/m1,a/m3,dm:alice:bob/m5" {
		t.Errorf("user=bob: %s", got)
	}
	if got, _ = list(fmt.Sprintf("?since=%d&until=%d&order=asc", base+1000, base+3000)); got != "b/m1,dm:alice:bob/m2" {
		t.Errorf("time range: %s", got)
	}
	for _, q := range []string{"order=up", "limit=0", "since=x", "user=a%20b", "after=a%20b"} {
		wantError(t, e.do("GET", "/v1/api/messages?"+q, e.keyA, ""), 400, kaiwa.CodeBadRequest)
	}
	e.store.fail(failLog, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	wantError(t, e.do("GET", "/v1/api/messages", e.keyA, ""), 503, kaiwa.CodeUnavailable)
}

func TestDeleteMessage(t *testing.T) {
	t.Parallel()
	// The test decides when the log writer gets to a message.
	e := newTestEnv(t, withOwnStream())
	m := e.logMessage(e.tenantA, "lobby", "alice", "rude", kaiwa.Now())
	keep := e.logMessage(e.tenantA, "lobby", "bob", "nice", kaiwa.Now())
	target := "/v1/api/channels/lobby/messages/" + m.ID

	wantStatus(t, e.do("DELETE", target, e.keyA, ""), http.StatusNoContent)
	if got := e.logged(e.tenantA); len(got) != 1 || got[0].ID != keep.ID {
		t.Errorf("log after delete: %+v", got)
	}
	if e.inStream(m) || !e.inStream(keep) {
		t.Error("the stream still holds the deleted message, or lost the other")
	}
	want := kaiwa.Control{Kind: kaiwa.ControlMessageDeleted, Tenant: e.tenantA, Channel: "lobby", ID: m.ID}
	if got := e.bus.Controls(); len(got) != 1 || got[0] != want {
		t.Errorf("controls %+v, want [%+v]", got, want)
	}
	ev := e.events.ofTenant(e.tenantA)
	if len(ev) != 1 || ev[0].Type != kaiwa.EventMsgDeleted || ev[0].Channel != "lobby" ||
		string(ev[0].Detail) != `{"actor":"api","id":"`+m.ID+`"}` {
		t.Errorf("events %+v", ev)
	}

	// Gone from both: not_found, and the clients are told again, so that a
	// retry after a failed publish reaches them.
	wantError(t, e.do("DELETE", target, e.keyA, ""), 404, kaiwa.CodeNotFound)
	if got := e.bus.Controls(); len(got) != 2 || got[1] != want {
		t.Errorf("controls %+v", got)
	}
	if n := len(e.events.ofTenant(e.tenantA)); n != 1 {
		t.Errorf("%d events, want 1", n)
	}

	// In the log only (aged out of the stream), and in the stream only (on
	// its way to the log, where it stays deleted when it arrives).
	old := e.logMessage(e.tenantA, "lobby", "alice", "old", kaiwa.Now())
	e.dropFromStream(old)
	wantStatus(t, e.do("DELETE", "/v1/api/channels/lobby/messages/"+old.ID, e.keyA, ""), http.StatusNoContent)
	fresh := e.streamOnly(e.tenantA, "lobby", "alice", "fresh", kaiwa.Now())
	wantStatus(t, e.do("DELETE", "/v1/api/channels/lobby%3A/messages/"+fresh.ID, e.keyA, ""), http.StatusNotFound)
	wantStatus(t, e.do("DELETE", "/v1/api/channels/lobby/messages/"+fresh.ID, e.keyA, ""), http.StatusNoContent)
	if err := shared.store.AppendMessages(t.Context(), []kaiwa.Message{fresh}); err != nil {
		t.Fatal(err)
	}
	if got := e.logged(e.tenantA); len(got) != 1 || got[0].ID != keep.ID {
		t.Errorf("log after late append: %+v", got)
	}

	// The id must be the message's in that channel.
	wantError(t, e.do("DELETE", "/v1/api/channels/other/messages/"+keep.ID, e.keyA, ""), 404, kaiwa.CodeNotFound)
	if !e.inStream(keep) || len(e.logged(e.tenantA)) != 1 {
		t.Error("a delete in another channel removed the message")
	}

	// A system message to a user's inbox can be deleted too.
	rec := e.do("POST", "/v1/api/users/bob/messages", e.keyA, `{"text":"oops"}`)
	var sys postedResponse
	decode(t, rec, &sys)
	wantStatus(t, e.do("DELETE", "/v1/api/channels/@bob/messages/"+sys.ID, e.keyA, ""), http.StatusNoContent)
	ev = e.events.ofTenant(e.tenantA)
	if last := ev[len(ev)-1]; last.Type != kaiwa.EventMsgDeleted || last.User != "bob" || last.Channel != "" {
		t.Errorf("inbox deletion event %+v", last)
	}

	bad := []string{
		"/v1/api/channels/lobby/messages/a%20b",
		"/v1/api/channels/lobby/messages/" + strings.Repeat("m", 129),
		"/v1/api/channels/lobby/messages/%E2%98%83",
		"/v1/api/channels/bad%2Fname/messages/m1",
		"/v1/api/channels/dm:bob:alice/messages/m1",
	}
	for _, target := range bad {
		wantError(t, e.do("DELETE", target, e.keyA, ""), 400, kaiwa.CodeBadRequest)
	}

	// Failures: the log, the stream, the control.
	m = e.logMessage(e.tenantA, "lobby", "alice", "again", kaiwa.Now())
	target = "/v1/api/channels/lobby/messages/" + m.ID
	e.store.fail(failLog, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	wantError(t, e.do("DELETE", target, e.keyA, ""), 503, kaiwa.CodeUnavailable)
	e.store.fail(failLog, nil)
	e.bus.fail(kaiwa.Errorf(kaiwa.CodeUnavailable, "stream unavailable"))
	wantError(t, e.do("DELETE", target, e.keyA, ""), 503, kaiwa.CodeUnavailable)
	e.bus.fail(nil)
	e.bus.failControls(kaiwa.Errorf(kaiwa.CodeUnavailable, "bus unavailable"))
	wantError(t, e.do("DELETE", target, e.keyA, ""), 503, kaiwa.CodeUnavailable)
	e.bus.failControls(nil)
	wantError(t, e.do("DELETE", target, e.keyA, ""), 404, kaiwa.CodeNotFound)
	if got := e.bus.Controls(); got[len(got)-1].ID != m.ID {
		t.Errorf("the retry did not tell the clients: %+v", got[len(got)-1])
	}
}

// BenchmarkPostMessage is a game server posting system messages to 50
// channels as fast as one API process answers (POST /channels/{ch}/messages
// over its handler, published to the test NATS, the shared log writer
// storing them in the test MySQL), with the tenant's rate limit out of the
// way. msgs/s is what one API process sustains; cpu-µs/msg is this
// process's CPU per message (the handler, the bus client and the log
// writer, and the test's NATS server, which runs in it; MySQL is a process
// of its own). Key checks, settings and channels go through the directory
// cache, as in the API process (cmd/kaiwa).
func BenchmarkPostMessage(b *testing.B) {
	cache := tenants.NewCache(shared.store, time.Minute)
	e := newTestEnv(b, withConfig(func(c *Config) {
		c.Core.Lookup = cache
		c.Tenants = tenants.CachedKeys{TenantStore: c.Tenants, Cache: cache}
	}))
	e.setSettings(e.tenantA, kaiwa.Settings{APIRate: 1e9, APIBurst: 1 << 30})
	const channels = 50
	for i := range channels {
		e.putChannel(e.keyA, fmt.Sprintf("bench%d", i), "open")
	}
	var (
		n    atomic.Int64
		mu   sync.Mutex
		last postedResponse // the post with the highest seq
	)
	b.SetParallelism(32) // a game server's pool of requests in flight
	start := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"text":"event %d","data":{"kind":"raid","n":%d}}`, i, i)
			rec := e.do("POST", fmt.Sprintf("/v1/api/channels/bench%d/messages", i%channels), e.keyA, body)
			var p postedResponse
			if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &p) != nil {
				b.Errorf("POST /channels/{ch}/messages: %d %s", rec.Code, rec.Body)
				return
			}
			mu.Lock()
			if p.Seq > last.Seq {
				last = p
			}
			mu.Unlock()
		}
	})
	b.StopTimer()
	posted := b.Elapsed()
	// The CPU counts the log writer's share: wait until it has stored the
	// last message (found by its id: the log's newest by time need not be
	// the last published, posts in flight together take their times and
	// their places in the stream in different orders).
	testenv.Eventually(b, "the last post in the log", 30*time.Second, func() bool {
		_, err := shared.store.Messages(context.Background(), e.tenantA, kaiwa.MessageQuery{After: last.ID, Limit: 1})
		return err == nil
	})
	b.ReportMetric(float64(b.N)/posted.Seconds(), "msgs/s")
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// cpuTime is the CPU this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
