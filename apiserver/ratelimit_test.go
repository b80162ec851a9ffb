package apiserver

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// TestRateLimitConfinesAFlood floods the API with one tenant's calls while
// another tenant calls too: the flood is cut at its tenant's burst, with
// 429 rate_limited and Retry-After, and the other tenant is not limited.
func TestRateLimitConfinesAFlood(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// A refills one call in 1000 s, so the count is exact.
	e.setSettings(e.tenantA, kaiwa.Settings{APIRate: 0.001, APIBurst: 10})
	secondA, err := shared.store.RotateKey(t.Context(), e.tenantA)
	if err != nil {
		t.Fatal(err)
	}

	var okA, limitedA, okB atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				if w%4 == 3 && i < 10 {
					// Every fourth worker calls as tenant B in between.
					rec := e.do("GET", "/v1/api/channels/lobby/messages", e.keyB, "")
					if rec.Code == http.StatusOK {
						okB.Add(1)
					} else {
						t.Errorf("tenant B: %d %s", rec.Code, rec.Body)
					}
				}
				rec := e.do("GET", "/v1/api/channels/lobby/messages", e.keyA, "")
				switch rec.Code {
				case http.StatusOK:
					okA.Add(1)
				case http.StatusTooManyRequests:
					limitedA.Add(1)
				default:
					t.Errorf("tenant A: %d %s", rec.Code, rec.Body)
				}
			}
		}()
	}
	wg.Wait()
	if okA.Load() != 10 || limitedA.Load() != 310 || okB.Load() != 20 {
		t.Errorf("A: %d allowed, %d limited; B: %d allowed; want 10, 310, 20", okA.Load(), limitedA.Load(), okB.Load())
	}

	// The limit is the tenant's, whichever key calls; the answer says when
	// to come back.
	rec := e.do("GET", "/v1/api/keys", secondA, "")
	msg := wantError(t, rec, http.StatusTooManyRequests, kaiwa.CodeRateLimited)
	secs, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || secs < 900 || secs > 1000 {
		t.Errorf("Retry-After %q, want about 1000 s", rec.Header().Get("Retry-After"))
	}
	if msg == "" {
		t.Error("no message")
	}
	wantStatus(t, e.do("GET", "/v1/api/keys", e.keyB, ""), http.StatusOK)
	// Calls without a valid key are refused before they count, and the
	// OpenAPI document is not limited.
	wantError(t, e.do("GET", "/v1/api/keys", "", ""), 401, kaiwa.CodeUnauthorized)
	wantStatus(t, e.do("GET", "/v1/api/openapi.json", "", ""), http.StatusOK)
	if logged := e.logs.String(); logged != "" {
		t.Errorf("rate limiting was logged: %q", logged)
	}
}

// TestBatchCountsPerMessage: a batch of system messages takes one call of
// the tenant's API rate per message; a batch the bucket cannot hold is
// refused whole, publishes nothing, and counts as one call (the request).
func TestBatchCountsPerMessage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// A refills one call in 1000 s, so the count is exact.
	e.setSettings(e.tenantA, kaiwa.Settings{APIRate: 0.001, APIBurst: 10})
	e.putChannel(e.keyA, "world", "open") // 1 of 10
	batch := func(n int) string {
		return `{"messages":[` + strings.TrimSuffix(strings.Repeat(`{"ch":"world","text":"x"},`, n), ",") + `]}`
	}
	wantStatus(t, e.do("POST", "/v1/api/messages/batch", e.keyA, batch(6)), http.StatusOK) // 7 of 10
	// Four messages are four calls: over what is left.
	rec := e.do("POST", "/v1/api/messages/batch", e.keyA, batch(4))
	wantError(t, rec, http.StatusTooManyRequests, kaiwa.CodeRateLimited)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if n := len(e.bus.Messages()); n != 6 {
		t.Errorf("%d messages published, want the first batch's 6 alone", n)
	}
	// The refused batch took one call: two messages still fit, then
	// nothing does.
	wantStatus(t, e.do("POST", "/v1/api/messages/batch", e.keyA, batch(2)), http.StatusOK)
	wantError(t, e.do("GET", "/v1/api/keys", e.keyA, ""), http.StatusTooManyRequests, kaiwa.CodeRateLimited)
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for wait, want := range map[time.Duration]int64{
		0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 90 * time.Second: 90,
	} {
		if got := retryAfter(wait); got != want {
			t.Errorf("retryAfter(%v) = %d, want %d", wait, got, want)
		}
	}
}

// limitsClock is the clock of a tenantLimits, which the test moves.
type limitsClock struct {
	now time.Time
}

func (c *limitsClock) advance(d time.Duration) { c.now = c.now.Add(d) }

// testLimits is a tenantLimits over the store, with tenants of its own
// (named by the test "a" to "e") and a clock the test moves.
type testLimits struct {
	*tenantLimits
	store *faultyStore
	clock *limitsClock
	ids   map[string]kaiwa.TenantID
}

func newTestLimits(t testing.TB, refresh time.Duration, max int) *testLimits {
	t.Helper()
	l := &testLimits{
		store: &faultyStore{Store: shared.store},
		clock: &limitsClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)},
		ids:   map[string]kaiwa.TenantID{},
	}
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		id := kaiwa.TenantID(uniqueID(name + "-"))
		if _, err := shared.store.CreateTenant(t.Context(), id, name); err != nil {
			t.Fatal(err)
		}
		l.ids[name] = id
	}
	l.tenantLimits = newTenantLimits(l.store, refresh, max)
	l.now = func() time.Time { return l.clock.now }
	return l
}

// setSettings replaces the settings of tenant name.
func (l *testLimits) setSettings(t testing.TB, name string, s kaiwa.Settings) {
	t.Helper()
	if err := shared.store.SetTenantSettings(t.Context(), l.ids[name], s); err != nil {
		t.Fatal(err)
	}
}

// has reports whether l keeps a bucket for tenant name.
func (l *testLimits) has(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.m[l.ids[name]]
	return ok
}

// size returns how many buckets l keeps.
func (l *testLimits) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// allowN calls allow for tenant name n times and returns how many were
// allowed and the wait of the last refusal.
func allowN(t testing.TB, l *testLimits, name string, n int) (allowed int, wait time.Duration) {
	t.Helper()
	for range n {
		ok, w, _ := l.allow(t.Context(), l.ids[name], 1)
		if ok {
			allowed++
		} else {
			wait = w
		}
	}
	return allowed, wait
}

func TestTenantLimitsFollowSettings(t *testing.T) {
	t.Parallel()
	l := newTestLimits(t, 5*time.Second, 100)
	clock := l.clock
	l.setSettings(t, "a", kaiwa.Settings{APIRate: 1, APIBurst: 2})

	if n, wait := allowN(t, l, "a", 3); n != 2 || wait != time.Second {
		t.Fatalf("burst 2 at 1/s: %d allowed, wait %v", n, wait)
	}
	clock.advance(time.Second)
	if n, _ := allowN(t, l, "a", 2); n != 1 {
		t.Errorf("after 1 s: %d allowed, want 1", n)
	}

	// A change is seen once the settings are older than refresh, not
	// before, and they are read once per refresh however many calls come.
	reads := l.store.reads()
	l.setSettings(t, "a", kaiwa.Settings{APIRate: 10, APIBurst: 5})
	clock.advance(time.Second)
	if n, _ := allowN(t, l, "a", 3); n != 1 {
		t.Errorf("before the refresh: %d allowed, want 1 (the old rate)", n)
	}
	if got := l.store.reads(); got != reads {
		t.Errorf("settings read %d times within the refresh interval", got-reads)
	}
	clock.advance(4 * time.Second)
	if n, wait := allowN(t, l, "a", 3); n != 2 || wait != 100*time.Millisecond {
		t.Errorf("after the refresh: %d allowed, wait %v; want 2 (the old burst) then 100ms", n, wait)
	}
	if got := l.store.reads(); got != reads+1 {
		t.Errorf("settings read %d times at the refresh, want 1", got-reads)
	}
	clock.advance(time.Second)
	if n, _ := allowN(t, l, "a", 6); n != 5 {
		t.Errorf("after 1 s at 10/s: %d allowed, want the new burst of 5", n)
	}

	// Settings that cannot be read: the tenant keeps its limits; a tenant
	// without any gets the defaults.
	l.store.fail(failSettings, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	clock.advance(10 * time.Second)
	if n, _ := allowN(t, l, "a", 6); n != 5 {
		t.Errorf("unreadable settings: %d allowed, want the kept burst of 5", n)
	}
	if n, _ := allowN(t, l, "b", kaiwa.DefaultSettings().APIBurst+100); n != kaiwa.DefaultSettings().APIBurst {
		t.Errorf("new tenant with unreadable settings: %d allowed, want the default burst", n)
	}
}

func TestTenantLimitsAreBounded(t *testing.T) {
	t.Parallel()
	l := newTestLimits(t, time.Second, 3)
	clock := l.clock
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		l.setSettings(t, name, kaiwa.Settings{APIRate: 0.001, APIBurst: 1})
	}
	for _, name := range []string{"a", "b", "c"} {
		allowN(t, l, name, 1)
		clock.advance(time.Millisecond)
	}
	// a, b and c have used their bursts. d pushes out the least recently
	// used, a, which starts afresh when it comes back.
	allowN(t, l, "d", 1)
	if l.has("a") || l.size() != 3 {
		t.Errorf("after d: a kept %v, %d tenants; want a dropped, 3", l.has("a"), l.size())
	}
	if ok, _ := allowN(t, l, "c", 1); ok != 0 {
		t.Error("c was forgotten, its burst refilled")
	}

	// Buckets that have refilled go first.
	l.setSettings(t, "b", kaiwa.Settings{APIRate: 1000, APIBurst: 1})
	clock.advance(2 * time.Second)
	allowN(t, l, "b", 1) // refresh: b now refills at once
	clock.advance(time.Second)
	allowN(t, l, "e", 1)
	if l.has("b") || !l.has("c") || l.size() != 3 {
		t.Errorf("after e: b kept %v, c kept %v, %d tenants; want the full bucket b dropped", l.has("b"), l.has("c"), l.size())
	}
}
