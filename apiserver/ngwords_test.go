package apiserver

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

// ngList reads the list of the tenant of key through the API.
func (e *testEnv) ngList(key string) ngResponse {
	e.t.Helper()
	rec := e.do("GET", "/v1/api/ngwords", key, "")
	wantStatus(e.t, rec, http.StatusOK)
	var l ngResponse
	decode(e.t, rec, &l)
	return l
}

func TestNGWords(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)

	// A fresh tenant: empty lists, the policy of its settings.
	rec := e.do("GET", "/v1/api/ngwords", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	if got := rec.Body.String(); got != "{\"policy\":\"reject\",\"words\":[],\"allow\":[]}\n" {
		t.Errorf("empty list %s", got)
	}

	rec = e.do("PUT", "/v1/api/ngwords", e.keyA, `{"words":["badword","ばか","ass"],"allow":["class"],"policy":"mask"}`)
	wantStatus(t, rec, http.StatusOK)
	var l ngResponse
	decode(t, rec, &l)
	// Entries come back in byte order.
	if l.Policy != kaiwa.NGMask || !slices.Equal(l.Words, []string{"ass", "badword", "ばか"}) || !slices.Equal(l.Allow, []string{"class"}) {
		t.Errorf("after PUT %+v", l)
	}

	rec = e.do("POST", "/v1/api/ngwords", e.keyA, `{"words":["ass","アホ"],"allow":["assist"]}`)
	wantStatus(t, rec, http.StatusOK)
	decode(t, rec, &l)
	if l.Policy != kaiwa.NGMask || !slices.Equal(l.Words, []string{"ass", "badword", "ばか", "アホ"}) ||
		!slices.Equal(l.Allow, []string{"assist", "class"}) {
		t.Errorf("after POST %+v", l)
	}
	// The policy alone may be changed by POST.
	decode(t, e.do("POST", "/v1/api/ngwords", e.keyA, `{"policy":"reject"}`), &l)
	if l.Policy != kaiwa.NGReject || len(l.Words) != 4 {
		t.Errorf("after policy POST %+v", l)
	}

	// DELETE takes the word percent-encoded as UTF-8, from either list.
	rec = e.do("DELETE", "/v1/api/ngwords/%E3%81%B0%E3%81%8B", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	decode(t, rec, &l)
	if !slices.Equal(l.Words, []string{"ass", "badword", "アホ"}) {
		t.Errorf("after DELETE %+v", l)
	}
	wantStatus(t, e.do("DELETE", "/v1/api/ngwords/assist", e.keyA, ""), http.StatusOK)
	if got := e.ngList(e.keyA); !slices.Equal(got.Allow, []string{"class"}) {
		t.Errorf("allow-list after DELETE %+v", got)
	}

	// Every change told every UA and was recorded.
	controls := e.bus.Controls()
	if len(controls) != 5 {
		t.Fatalf("%d controls, want 5: %+v", len(controls), controls)
	}
	for _, c := range controls {
		if c != (kaiwa.Control{Kind: kaiwa.ControlNGWords, Tenant: e.tenantA}) {
			t.Errorf("control %+v", c)
		}
	}
	var changes []string
	for _, ev := range e.events.ofTenant(e.tenantA) {
		if ev.Type == kaiwa.EventNGChanged {
			changes = append(changes, string(ev.Detail))
		}
	}
	if len(changes) != 5 || !strings.Contains(changes[0], `"op":"replace"`) || !strings.Contains(changes[0], `"words":3`) ||
		!strings.Contains(changes[1], `"op":"add"`) || !strings.Contains(changes[3], `"word":"ばか"`) {
		t.Errorf("ng_list_changed events %v", changes)
	}

	// PUT with an empty list clears it.
	decode(t, e.do("PUT", "/v1/api/ngwords", e.keyA, `{"words":[]}`), &l)
	if len(l.Words) != 0 || len(l.Allow) != 0 || l.Words == nil {
		t.Errorf("cleared list %+v", l)
	}
}

func TestNGWordsRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, withConfig(func(c *Config) { c.NGBodyLimit = 256 << 10 }))
	e.do("PUT", "/v1/api/ngwords", e.keyA, `{"words":["keep"]}`)
	controls := len(e.bus.Controls())
	tests := []struct {
		method, target, body string
		status               int
		code                 kaiwa.Code
	}{
		{"PUT", "/v1/api/ngwords", `{"policy":"mask"}`, 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/ngwords", `{"words":null}`, 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/ngwords", `{"words":"bad"}`, 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/ngwords", `{"words":[1]}`, 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/ngwords", `{"words":[""]}`, 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/ngwords", `{"words":["  "]}`, 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/ngwords", `{"words":["a\u0000b"]}`, 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/ngwords", `{"words":["` + strings.Repeat("語", 65) + `"]}`, 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/ngwords", `{"words":["x"],"policy":"ban"}`, 400, kaiwa.CodeBadRequest},
		{"PUT", "/v1/api/ngwords", ``, 400, kaiwa.CodeBadRequest},
		{"POST", "/v1/api/ngwords", `{}`, 400, kaiwa.CodeBadRequest},
		{"POST", "/v1/api/ngwords", `{"words":[]}`, 400, kaiwa.CodeBadRequest},
		{"POST", "/v1/api/ngwords", `{"policy":"MASK"}`, 400, kaiwa.CodeBadRequest},
		{"POST", "/v1/api/ngwords", "{\"words\":[\"\xff\"]}", 400, kaiwa.CodeBadRequest},
		{"POST", "/v1/api/ngwords", `{"words":[` + strings.Repeat(`"w",`, kaiwa.MaxNGWords) + `"w"]}`, 413, kaiwa.CodeTooLarge},
		{"DELETE", "/v1/api/ngwords/absent", "", 404, kaiwa.CodeNotFound},
		{"DELETE", "/v1/api/ngwords/%20", "", 400, kaiwa.CodeBadRequest},
		{"DELETE", "/v1/api/ngwords/%FF", "", 400, kaiwa.CodeBadRequest},
		{"DELETE", "/v1/api/ngwords/" + strings.Repeat("x", 65), "", 400, kaiwa.CodeBadRequest},
		{"DELETE", "/v1/api/ngwords/a%0Ab", "", 400, kaiwa.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.body+tt.target, func(t *testing.T) {
			wantError(t, e.do(tt.method, tt.target, e.keyA, tt.body), tt.status, tt.code)
		})
	}
	if got := e.ngList(e.keyA); !slices.Equal(got.Words, []string{"keep"}) {
		t.Errorf("list changed by bad requests: %+v", got)
	}
	// Only the delete of an absent word told the UAs (a retry after a
	// failed publish must reach them).
	if got := len(e.bus.Controls()) - controls; got != 1 {
		t.Errorf("%d controls from bad requests, want 1", got)
	}

	// Words with '/' and '%' are deleted by their escapes.
	e.do("POST", "/v1/api/ngwords", e.keyA, `{"words":["a/b","100%"]}`)
	wantStatus(t, e.do("DELETE", "/v1/api/ngwords/a%2Fb", e.keyA, ""), http.StatusOK)
	wantStatus(t, e.do("DELETE", "/v1/api/ngwords/100%25", e.keyA, ""), http.StatusOK)
	if got := e.ngList(e.keyA); !slices.Equal(got.Words, []string{"keep"}) {
		t.Errorf("after deleting escaped words: %+v", got)
	}

	e.store.fail(failNG, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	wantError(t, e.do("GET", "/v1/api/ngwords", e.keyA, ""), 503, kaiwa.CodeUnavailable)
	wantError(t, e.do("POST", "/v1/api/ngwords", e.keyA, `{"words":["x"]}`), 503, kaiwa.CodeUnavailable)
	e.store.fail(failNG, nil)
	e.bus.failControls(kaiwa.Errorf(kaiwa.CodeUnavailable, "bus unavailable"))
	wantError(t, e.do("POST", "/v1/api/ngwords", e.keyA, `{"words":["x"]}`), 503, kaiwa.CodeUnavailable)
	e.bus.failControls(nil)
	// The retry adds nothing new and still tells the UAs.
	before := len(e.bus.Controls())
	wantStatus(t, e.do("POST", "/v1/api/ngwords", e.keyA, `{"words":["x"]}`), http.StatusOK)
	if len(e.bus.Controls()) != before+1 {
		t.Error("the retry did not tell the UAs")
	}
}

// TestNGWordsBodyLimit checks that a long list fits in one call, beyond the
// limit of other calls.
func TestNGWordsBodyLimit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, withConfig(func(c *Config) { c.BodyLimit = 1024; c.NGBodyLimit = 64 << 10 }))
	words := make([]string, 2000)
	for i := range words {
		words[i] = `"w` + strings.Repeat("x", i%20) + string(rune('a'+i%26)) + `"`
	}
	body := `{"words":[` + strings.Join(words, ",") + `]}`
	if len(body) < 16<<10 || len(body) > 64<<10 {
		t.Fatalf("body of %d bytes", len(body))
	}
	wantStatus(t, e.do("PUT", "/v1/api/ngwords", e.keyA, body), http.StatusOK)
	wantError(t, e.do("PUT", "/v1/api/ngwords", e.keyA, body+strings.Repeat(" ", 64<<10)), 413, kaiwa.CodeTooLarge)
	// Other calls keep their own limit.
	wantError(t, e.do("PUT", "/v1/api/channels/c", e.keyA, `{"kind":"open","title":"`+strings.Repeat("t", 2000)+`"}`), 413, kaiwa.CodeTooLarge)
}
