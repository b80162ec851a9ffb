package apiserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
