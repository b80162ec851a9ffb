package apiserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kaiwa-chat/kaiwa"
)

func TestDecodeBody(t *testing.T) {
	t.Parallel()
	type target struct {
		Text string          `json:"text"`
		N    int64           `json:"n"`
		List []string        `json:"list"`
		Data json.RawMessage `json:"data"`
	}
	ok := []struct {
		body string
		want target
	}{
		{`{}`, target{}},
		{` {"text":"hi"} ` + "\n", target{Text: "hi"}},
		{`{"text":"x","unknown":{"deep":[1,2,3]},"n":7}`, target{Text: "x", N: 7}},
		{`{"text":"\u3053\u3093","list":["a","b"]}`, target{Text: "こん", List: []string{"a", "b"}}},
		{`{"data":{ "a" : [ 1 ] }}`, target{Data: json.RawMessage(`{ "a" : [ 1 ] }`)}},
		{`{"text":"'; DROP TABLE messages; --"}`, target{Text: "'; DROP TABLE messages; --"}},
	}
	for _, tt := range ok {
		var got target
		if err := decodeBody([]byte(tt.body), &got); err != nil {
			t.Errorf("decodeBody(%q): %v", tt.body, err)
			continue
		}
		if got.Text != tt.want.Text || got.N != tt.want.N || strings.Join(got.List, ",") != strings.Join(tt.want.List, ",") ||
			!bytes.Equal(got.Data, tt.want.Data) {
			t.Errorf("decodeBody(%q) = %+v, want %+v", tt.body, got, tt.want)
		}
	}

	bad := []struct{ body, inMessage string }{
		{``, "empty"},
		{"  \n", "empty"},
		{`[]`, "JSON object"},
		{`"text"`, "JSON object"},
		{`null`, "JSON object"},
		{`{"text":"a"`, "invalid JSON"},
		{`{"text":"a"}}`, "after top-level value"},
		{`{"text":"a"} {"text":"b"}`, "after top-level value"},
		{`{"text":"a",}`, "invalid JSON"},
		{`{'text':'a'}`, "invalid JSON"},
		{`{"text":1}`, `"text" must be a string, not number`},
		{`{"n":"7"}`, `"n" must be an integer, not string`},
		{`{"n":1.5}`, `"n" must be an integer`},
		{`{"n":1e400}`, `"n" must be an integer`},
		{`{"list":"a"}`, `"list" must be an array`},
		{`{"list":[1]}`, `must be a string`},
		{"{\"text\":\"\xff\"}", "UTF-8"},
		{"\xef\xbb\xbf{}", "JSON object"}, // a byte order mark is not JSON
		{`{"data":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "exceeded max depth"},
	}
	for _, tt := range bad {
		var got target
		err := decodeBody([]byte(tt.body), &got)
		if !kaiwa.IsCode(err, kaiwa.CodeBadRequest) {
			t.Errorf("decodeBody(%q): %v, want bad_request", tt.body, err)
			continue
		}
		if msg := kaiwa.ErrorMessage(err); !strings.Contains(msg, tt.inMessage) {
			t.Errorf("decodeBody(%q): message %q lacks %q", tt.body, msg, tt.inMessage)
		}
	}
}

func TestDecodeJSONLimit(t *testing.T) {
	t.Parallel()
	var v struct{ Text string }
	r := http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(`{"text":"`+strings.Repeat("x", 100)+`"}`)), 64)
	if err := decodeJSON(r, &v, false); !kaiwa.IsCode(err, kaiwa.CodeTooLarge) || !strings.Contains(err.Error(), "64 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	r = http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(`{"text":"fits"}`)), 64)
	if err := decodeJSON(r, &v, false); err != nil || v.Text != "fits" {
		t.Errorf("under the limit: %v %+v", err, v)
	}
	if err := decodeJSON(nil, &v, false); !kaiwa.IsCode(err, kaiwa.CodeBadRequest) {
		t.Errorf("no body: %v", err)
	}
}

// FuzzDecodeBody decodes arbitrary bodies into the message and token
// request types. A body is accepted only when it is valid UTF-8 holding
// exactly one JSON object; data is kept byte for byte; anything refused is
// a bad_request with a message, never a panic or an internal error.
func FuzzDecodeBody(f *testing.F) {
	seeds := []string{
		`{"text":"hello","data":{"a":1}}`,
		`{"user":"alice","name":"Alice","ttl_seconds":3600,"join":["*"],"publish":["dm:"]}`,
		`{"kind":"open","title":"Lobby"}`,
		`{"text":"x"} trailing`,
		`{"text":"x"}{"text":"y"}`,
		`{"ttl_seconds":1e99}`,
		`{"ttl_seconds":"1"}`,
		`{"data":[1,2,3]}`,
		`{"data":null}`,
		`{"text":"\ud800"}`,
		"{\"text\":\"\xc3\x28\"}",
		`[{"text":"x"}]`,
		`null`,
		``,
		`{"text":"' OR '1'='1"}`,
		strings.Repeat(`{"data":`, 64) + `{}` + strings.Repeat(`}`, 64),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"words":["ばか","a/b"],"allow":["class"],"policy":"mask"}`,
		`{"until":"2030-01-02T03:04:05+09:00","reason":"spam"}`,
		`{"until":1893456000000}`,
		`{"until":"1893456000000"}`,
		`{"until":null}`,
		`{"until":1e400}`,
		`{"until":[1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var msg messageRequest
		err := decodeBody(body, &msg)
		checkDecoded(t, body, err)
		if err == nil && msg.Data != nil {
			if !json.Valid(msg.Data) || !bytes.Contains(body, msg.Data) {
				t.Fatalf("data %q is not a valid slice of the body %q", msg.Data, body)
			}
			if !utf8.ValidString(msg.Text) {
				t.Fatalf("text %q is not valid UTF-8", msg.Text)
			}
		}
		var tok tokenRequest
		checkDecoded(t, body, decodeBody(body, &tok))
		var ch channelRequest
		checkDecoded(t, body, decodeBody(body, &ch))
		var ng ngRequest
		err = decodeBody(body, &ng)
		checkDecoded(t, body, err)
		if err == nil {
			// Decoded entries are valid UTF-8: the check that follows
			// decoding only has to bound them.
			for _, w := range append(ng.Words, ng.Allow...) {
				if !utf8.ValidString(w) {
					t.Fatalf("entry %q is not valid UTF-8", w)
				}
			}
		}
		var sanction sanctionRequest
		err = decodeBody(body, &sanction)
		checkDecoded(t, body, err)
		if err == nil && !sanction.Until.IsZero() && (sanction.Until.Year() < 1970 || sanction.Until.Year() > 9999) {
			t.Fatalf("until %v out of range from %q", sanction.Until, body)
		}
		var kick kickRequest
		checkDecoded(t, body, decodeBody(body, &kick))
	})
}

func TestTimeValue(t *testing.T) {
	t.Parallel()
	want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, in := range []string{
		`"2030-01-02T03:04:05Z"`, `"2030-01-02T12:04:05+09:00"`, `1893553445000`, `"1893553445000"`,
	} {
		var v timeValue
		if err := json.Unmarshal([]byte(in), &v); err != nil || !v.Equal(want) {
			t.Errorf("%s: %v %v", in, v.Time, err)
		}
	}
	v := timeValue{want}
	if err := json.Unmarshal([]byte(`null`), &v); err != nil || !v.IsZero() {
		t.Errorf("null: %v %v", v.Time, err)
	}
	for _, in := range []string{
		`"tomorrow"`, `"2030-01-02"`, `true`, `{}`, `[]`, `-1`, `1.5`, `1e30`, `"1e3"`, `""`, `"1969-12-31T23:59:59Z"`,
		`253402300800000`,
	} {
		var v timeValue
		err := v.UnmarshalJSON([]byte(in))
		if !kaiwa.IsCode(err, kaiwa.CodeBadRequest) || !strings.Contains(err.Error(), "until") {
			t.Errorf("%s: %v, want bad_request naming until", in, err)
		}
	}
}

func TestOptionalBody(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", " \n\t "} {
		v := kickRequest{Reason: "kept"}
		if err := decodeJSON(strings.NewReader(body), &v, true); err != nil || v.Reason != "kept" {
			t.Errorf("optional %q: %v %+v", body, err, v)
		}
		if err := decodeJSON(strings.NewReader(body), &v, false); !kaiwa.IsCode(err, kaiwa.CodeBadRequest) {
			t.Errorf("required %q: %v", body, err)
		}
	}
	var v kickRequest
	if err := decodeJSON(strings.NewReader(`{"reason":"r"}`), &v, true); err != nil || v.Reason != "r" {
		t.Errorf("optional body given: %v %+v", err, v)
	}
	if err := decodeJSON(strings.NewReader(`x`), &v, true); !kaiwa.IsCode(err, kaiwa.CodeBadRequest) {
		t.Errorf("optional body malformed: %v", err)
	}
}

// FuzzQuery parses arbitrary query strings as message and event log
// queries: each is refused with a bad_request that says why, or gives a
// query within bounds.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"limit=10&order=desc&before=m5",
		"since=2025-03-01T21:00:00+09:00&until=1741000000000",
		"since=1741000000000&until=1740000000000",
		"user=alice&after=sqx0-1",
		"type=ng_blocked&ch=dm:alice:bob&user=bob",
		"ch=%40alice&type=system",
		"limit=99999999999999999999",
		"until=253402300800000",
		"since=0001-01-01T00:00:00Z",
		"before=%00&after=%FF",
		"order=DESC&type=Join",
		"limit=1&limit=600",
	} {
		f.Add(s)
	}
	limits := pageLimits{Default: DefaultPageLimit, Max: DefaultMaxPageLimit}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // Echo drops what it cannot parse, as url.Values does
		}
		q, err := parseMessageQuery(v, limits)
		if err != nil {
			checkRefused(t, raw, err)
		} else {
			checkBounds(t, raw, q.Limit, q.User, q.Since, q.Until, q.Before, q.After)
			if q.Channel != "" {
				t.Fatalf("%q: channel %q from a query", raw, q.Channel)
			}
		}
		eq, err := parseEventQuery(v, limits)
		if err != nil {
			checkRefused(t, raw, err)
			return
		}
		checkBounds(t, raw, eq.Limit, eq.User, eq.Since, eq.Until, eq.Before)
		if eq.Type != "" && !validEventType(eq.Type) {
			t.Fatalf("%q: type %q", raw, eq.Type)
		}
		if eq.Channel != "" && kaiwa.CheckChannel(eq.Channel) != nil {
			t.Fatalf("%q: channel %q", raw, eq.Channel)
		}
	})
}

func checkRefused(t *testing.T, raw string, err error) {
	t.Helper()
	if !kaiwa.IsCode(err, kaiwa.CodeBadRequest) || kaiwa.ErrorMessage(err) == "" {
		t.Fatalf("%q: %v, want bad_request with a message", raw, err)
	}
}

func checkBounds(t *testing.T, raw string, limit int, user string, since, until time.Time, cursors ...string) {
	t.Helper()
	if limit < 1 || limit > DefaultMaxPageLimit {
		t.Fatalf("%q: limit %d", raw, limit)
	}
	if user != "" && !kaiwa.ValidID(user) {
		t.Fatalf("%q: user %q", raw, user)
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		t.Fatalf("%q: until %v before since %v", raw, until, since)
	}
	for _, tm := range []time.Time{since, until} {
		if !tm.IsZero() && (tm.Year() < 1970 || tm.Year() > 9999) {
			t.Fatalf("%q: time %v out of range", raw, tm)
		}
	}
	for _, c := range cursors {
		if len(c) > maxCursorLen || !validCursor(c) {
			t.Fatalf("%q: cursor %q", raw, c)
		}
	}
}

// FuzzRequestTarget sends requests with arbitrary paths and queries under
// the API prefix, with a valid key, to a server with data in it: whatever
// the path parameters and query hold, the answer is a success or a client
// error in the documented shape, never a server error.
func FuzzRequestTarget(f *testing.F) {
	for _, s := range []struct {
		method uint8
		path   string
	}{
		{0, "channels/lobby/messages?limit=5&order=desc"},
		{0, "channels/dm%3Aalice%3Abob/messages?before=m1"},
		{0, "channels/%40alice/messages"},
		{0, "messages?user=alice&since=2025-01-01T00:00:00Z"},
		{0, "events?type=kick&ch=lobby&before=e1"},
		{0, "users/alice/sanctions"},
		{1, "channels/a%2Fb/members/x%00"},
		{1, "ngwords"},
		{2, "users/alice/ban"},
		{2, "channels/lobby"},
		{3, "ngwords/%E3%81%B0%E3%81%8B"},
		{3, "ngwords/%ZZ"},
		{3, "keys/1"},
		{3, "channels/lobby/messages/m1"},
		{0, "channels/..%2F..%2Fetc/messages"},
		{0, "keys/../settings"},
	} {
		f.Add(s.method, s.path)
	}
	methods := []string{"GET", "POST", "PUT", "DELETE"}
	f.Fuzz(func(t *testing.T, method uint8, path string) {
		req, err := http.NewRequest(methods[int(method)%len(methods)], "/v1/api/"+path, strings.NewReader(`{"text":"x","words":["w"]}`))
		if err != nil {
			return // not a request a client can send
		}
		e := newTestEnv(t)
		e.setSettings(e.tenantA, kaiwa.Settings{APIRate: 1e9, APIBurst: 1e9})
		e.putChannel(e.keyA, "lobby", "open")
		e.logMessage(e.tenantA, "lobby", "alice", "hello", kaiwa.Now())
		req.Header.Set("Authorization", "Bearer "+e.keyA)
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s\nlog: %s", req.Method, path, rec.Code, rec.Body, e.logs.String())
		}
		if rec.Code >= 400 && req.Method != "HEAD" {
			var body errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
				t.Fatalf("%s %q: error body %s", req.Method, path, rec.Body)
			}
		}
	})
}

func checkDecoded(t *testing.T, body []byte, err error) {
	t.Helper()
	if err != nil {
		if code := kaiwa.ErrorCode(err); code != kaiwa.CodeBadRequest {
			t.Fatalf("body %q: code %s (%v), want bad_request", body, code, err)
		}
		if kaiwa.ErrorMessage(err) == "" {
			t.Fatalf("body %q: error without a message", body)
		}
		return
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if !utf8.Valid(body) || !json.Valid(body) || len(trimmed) == 0 || trimmed[0] != '{' {
		t.Fatalf("accepted %q, which is not one JSON object in UTF-8", body)
	}
}
