package apiserver

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func TestIssueToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	before := time.Now().Truncate(time.Second)
	rec := e.do("POST", "/v1/api/tokens", e.keyA,
		`{"user":"alice","name":"Alice ☆","ttl_seconds":3600,"join":["guild.","dm:"],"publish":["*"],"extra":{"ignored":true}}`)
	wantStatus(t, rec, http.StatusCreated)
	var raw map[string]any
	decode(t, rec, &raw)
	if len(raw) != 2 {
		t.Errorf("response %v, want token and expires_at only", raw)
	}
	var got tokenResponse
	decode(t, rec, &got)
	exp, err := time.Parse(time.RFC3339, got.ExpiresAt)
	if err != nil {
		t.Fatalf("expires_at %q: %v", got.ExpiresAt, err)
	}
	if d := exp.Sub(before); d < time.Hour || d > time.Hour+5*time.Second {
		t.Errorf("expires_at %v is %v after the request, want 1h", exp, d)
	}
	id, err := shared.store.ResolveToken(t.Context(), got.Token)
	if err != nil {
		t.Fatal(err)
	}
	if id.Tenant != e.tenantA || id.User != "alice" || id.Name != "Alice ☆" ||
		!slices.Equal(id.Join, []string{"guild.", "dm:"}) || !slices.Equal(id.Publish, []string{"*"}) {
		t.Errorf("identity %+v", id)
	}

	// The display name defaults to the user id.
	rec = e.do("POST", "/v1/api/tokens", e.keyA, `{"user":"bob","ttl_seconds":60}`)
	wantStatus(t, rec, http.StatusCreated)
	decode(t, rec, &got)
	if id, _ := shared.store.ResolveToken(t.Context(), got.Token); id.Name != "bob" {
		t.Errorf("default name %q, want bob", id.Name)
	}
}

func TestIssueTokenRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	bad := map[string]string{
		"no body":             ``,
		"not an object":       `["alice"]`,
		"invalid json":        `{"user":"alice",}`,
		"trailing garbage":    `{"user":"alice","ttl_seconds":60} x`,
		"two objects":         `{"user":"alice","ttl_seconds":60}{}`,
		"missing user":        `{"ttl_seconds":60}`,
		"sql in user":         `{"user":"alice'; DROP TABLE tokens; --","ttl_seconds":60}`,
		"user too long":       `{"user":"` + strings.Repeat("a", 65) + `","ttl_seconds":60}`,
		"ttl missing":         `{"user":"alice"}`,
		"ttl negative":        `{"user":"alice","ttl_seconds":-1}`,
		"ttl over max":        `{"user":"alice","ttl_seconds":2592001}`,
		"ttl overflowing":     `{"user":"alice","ttl_seconds":9223372036854775807}`,
		"ttl beyond int64":    `{"user":"alice","ttl_seconds":1e30}`,
		"ttl fraction":        `{"user":"alice","ttl_seconds":1.5}`,
		"ttl as string":       `{"user":"alice","ttl_seconds":"3600"}`,
		"user as number":      `{"user":42,"ttl_seconds":60}`,
		"join not array":      `{"user":"alice","ttl_seconds":60,"join":"*"}`,
		"bad join prefix":     `{"user":"alice","ttl_seconds":60,"join":["a b"]}`,
		"empty publish":       `{"user":"alice","ttl_seconds":60,"publish":[""]}`,
		"name too long":       `{"user":"alice","name":"` + strings.Repeat("名", 65) + `","ttl_seconds":60}`,
		"invalid utf-8":       "{\"user\":\"alice\",\"name\":\"\xff\xfe\",\"ttl_seconds\":60}",
		"too many join":       `{"user":"alice","ttl_seconds":60,"join":[` + strings.Repeat(`"a",`, 64) + `"a"]}`,
		"null body":           `null`,
		"sql in join prefix":  `{"user":"alice","ttl_seconds":60,"join":["' OR 1=1 --"]}`,
		"unterminated string": `{"user":"alice`,
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			wantError(t, e.do("POST", "/v1/api/tokens", e.keyA, body), 400, kaiwa.CodeBadRequest)
		})
	}
	if n := e.store.tokensIssued(); n != 0 {
		t.Errorf("%d tokens issued from bad requests", n)
	}
}

func TestIssueTokenKeepsSQLishNamesVerbatim(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	name := `Robert'); DROP TABLE users;--`
	rec := e.do("POST", "/v1/api/tokens", e.keyA, `{"user":"bobby","name":"Robert'); DROP TABLE users;--","ttl_seconds":60}`)
	wantStatus(t, rec, http.StatusCreated)
	var got tokenResponse
	decode(t, rec, &got)
	if id, err := shared.store.ResolveToken(t.Context(), got.Token); err != nil || id.Name != name {
		t.Errorf("name %q (%v), want %q", id.Name, err, name)
	}
}

func TestRevokeTokens(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var toks []string
	for range 2 {
		rec := e.do("POST", "/v1/api/tokens", e.keyA, `{"user":"alice","ttl_seconds":60}`)
		wantStatus(t, rec, http.StatusCreated)
		var got tokenResponse
		decode(t, rec, &got)
		toks = append(toks, got.Token)
	}
	rec := e.do("POST", "/v1/api/tokens", e.keyA, `{"user":"bob","ttl_seconds":60}`)
	var bob tokenResponse
	decode(t, rec, &bob)

	rec = e.do("DELETE", "/v1/api/users/alice/tokens", e.keyA, "")
	wantStatus(t, rec, http.StatusNoContent)
	if rec.Body.Len() != 0 {
		t.Errorf("204 with a body: %q", rec.Body)
	}
	for _, tok := range toks {
		if _, err := shared.store.ResolveToken(t.Context(), tok); !kaiwa.IsCode(err, kaiwa.CodeUnauthorized) {
			t.Errorf("revoked token resolves: %v", err)
		}
	}
	if _, err := shared.store.ResolveToken(t.Context(), bob.Token); err != nil {
		t.Errorf("bob's token was revoked too: %v", err)
	}
	// The control says when: signed tokens issued before are refused.
	want := kaiwa.Control{Kind: kaiwa.ControlTokensRevoked, Tenant: e.tenantA, User: "alice"}
	got := e.bus.Controls()
	if len(got) == 1 {
		if time.Since(got[0].Until) > time.Minute {
			t.Errorf("control's until %v, want now", got[0].Until)
		}
		got[0].Until = time.Time{}
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("controls %+v, want [%+v]", got, want)
	}

	wantError(t, e.do("DELETE", "/v1/api/users/a%20b/tokens", e.keyA, ""), 400, kaiwa.CodeBadRequest)
	wantError(t, e.do("DELETE", "/v1/api/users/"+strings.Repeat("x", 65)+"/tokens", e.keyA, ""), 400, kaiwa.CodeBadRequest)

	// A failed publish is an error the caller may retry; the retry closes
	// the sessions although no token is left.
	e.bus.fail(kaiwa.Errorf(kaiwa.CodeUnavailable, "bus unavailable"))
	wantError(t, e.do("DELETE", "/v1/api/users/bob/tokens", e.keyA, ""), 503, kaiwa.CodeUnavailable)
	e.bus.fail(nil)
	wantStatus(t, e.do("DELETE", "/v1/api/users/bob/tokens", e.keyA, ""), http.StatusNoContent)
	if got := e.bus.Controls(); len(got) != 2 || got[1].User != "bob" {
		t.Errorf("controls after retry %+v", got)
	}
}

// TestIssuedTokenExpires moves the store's clock, instead of waiting, to
// check that a token works until its expires_at and is expired from then.
func TestIssuedTokenExpires(t *testing.T) {
	t.Parallel()
	clock := &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := newTestEnv(t, withClock(clock))
	rec := e.do("POST", "/v1/api/tokens", e.keyA, `{"user":"alice","ttl_seconds":60}`)
	wantStatus(t, rec, http.StatusCreated)
	var got tokenResponse
	decode(t, rec, &got)
	if want := "2030-01-02T03:05:05Z"; got.ExpiresAt != want {
		t.Fatalf("expires_at %s, want %s", got.ExpiresAt, want)
	}
	clock.set(clock.Now().Add(59 * time.Second))
	if _, err := e.store.ResolveToken(t.Context(), got.Token); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	clock.set(clock.Now().Add(time.Second))
	if _, err := e.store.ResolveToken(t.Context(), got.Token); !kaiwa.IsCode(err, kaiwa.CodeTokenExpired) {
		t.Errorf("at expiry: %v, want token_expired", err)
	}
}

// BenchmarkIssueToken is a game server issuing a token per player login
// as fast as one API process answers (POST /tokens over its handler, the
// store in the test MySQL), with the tenant's rate limit out of the way:
// tokens/s is what one API process can issue on this machine, which the
// default rate limit ([kaiwa.DefaultSettings] APIRate) must stay under.
func BenchmarkIssueToken(b *testing.B) {
	e := newTestEnv(b)
	e.setSettings(e.tenantA, kaiwa.Settings{APIRate: 1e9, APIBurst: 1 << 30})
	var n atomic.Int64
	b.SetParallelism(8) // requests in flight like a game server's pool
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := fmt.Sprintf(`{"user":"player%d","ttl_seconds":3600}`, n.Add(1))
			if rec := e.do("POST", "/v1/api/tokens", e.keyA, body); rec.Code != http.StatusCreated {
				b.Errorf("POST /tokens: %d %s", rec.Code, rec.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
