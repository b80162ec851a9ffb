package apiserver

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/kaiwa-chat/kaiwa"
)

// limitRate refuses a tenant's calls over its API rate with 429
// "rate_limited" and a Retry-After header, so that one tenant cannot starve
// the others. It runs after [requireAPIKey]. A call that counts as several
// takes the rest with [tenantLimits.take] in its handler.
func limitRate(l *tenantLimits) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := l.take(c, 1); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// take takes n calls of call c's tenant from its bucket (a batch counts as
// one call per message), or answers 429 "rate_limited" with Retry-After
// when the bucket does not hold them, taking nothing.
func (l *tenantLimits) take(c echo.Context, n int) error {
	ok, wait, perSecond := l.allow(c.Request().Context(), tenantOf(c), n)
	if ok {
		return nil
	}
	secs := retryAfter(wait)
	c.Response().Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return kaiwa.Errorf(kaiwa.CodeRateLimited,
		"over the API rate of %g calls per second; retry after %d s", perSecond, secs)
}

// retryAfter returns the whole seconds, at least 1, of a Retry-After
// header that covers wait.
func retryAfter(wait time.Duration) int64 {
	return max(int64(math.Ceil(wait.Seconds())), 1)
}

// tenantLimits keeps a token bucket per tenant, sized from the tenant's
// settings (APIRate per second, APIBurst), which it reads again when they
// are older than refresh. It keeps at most max tenants; when full, buckets
// that have refilled are dropped first (forgetting them changes nothing),
// then the least recently used.
//
// A tenantLimits is safe for concurrent use; mu guards the map and the
// entries' bookkeeping, and each [rate.Limiter] locks itself.
type tenantLimits struct {
	tenants kaiwa.TenantStore
	refresh time.Duration
	max     int
	now     func() time.Time

	mu sync.Mutex
	m  map[kaiwa.TenantID]*tenantLimit
}

// tenantLimit is one tenant's bucket.
type tenantLimit struct {
	lim        *rate.Limiter
	checked    time.Time // when the settings were last read
	used       time.Time // the last call
	refreshing bool      // a call is reading the settings
}

func newTenantLimits(tenants kaiwa.TenantStore, refresh time.Duration, max int) *tenantLimits {
	return &tenantLimits{
		tenants: tenants,
		refresh: refresh,
		max:     max,
		now:     time.Now,
		m:       make(map[kaiwa.TenantID]*tenantLimit),
	}
}

// allow takes n calls from t's bucket. When the bucket does not hold
// them, ok is false, nothing is taken, and wait is how long until they
// would be allowed (a second when they never would: more than the burst).
// perSecond is the tenant's rate.
func (l *tenantLimits) allow(ctx context.Context, t kaiwa.TenantID, n int) (ok bool, wait time.Duration, perSecond float64) {
	now := l.now()
	l.mu.Lock()
	e := l.m[t]
	stale := e == nil || (!e.refreshing && now.Sub(e.checked) >= l.refresh)
	if stale && e != nil {
		e.refreshing = true
	}
	l.mu.Unlock()

	if stale {
		e = l.update(ctx, t, now)
	}

	l.mu.Lock()
	e.used = now
	l.mu.Unlock()
	perSecond = float64(e.lim.Limit())
	// A refused call takes nothing from the bucket. (A reservation
	// cancelled afterwards would not give its token back when another
	// call reserved meanwhile, so concurrent refusals would leave the
	// tenant in debt.)
	if e.lim.AllowN(now, n) {
		return true, 0, perSecond
	}
	if perSecond <= 0 || e.lim.Burst() < n {
		return false, time.Second, perSecond
	}
	need := float64(n) - e.lim.TokensAt(now)
	return false, time.Duration(need * float64(time.Second) / perSecond), perSecond
}

// update reads t's settings and sizes its bucket from them, making the
// bucket when t has none. When the settings cannot be read, a new bucket
// gets the default size and an existing one keeps its own; either is read
// again after refresh.
func (l *tenantLimits) update(ctx context.Context, t kaiwa.TenantID, now time.Time) *tenantLimit {
	st, err := l.tenants.TenantSettings(ctx, t)
	if err != nil {
		st = kaiwa.DefaultSettings()
	}
	st = st.WithDefaults()
	limit, burst := rate.Limit(st.APIRate), st.APIBurst

	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[t]
	switch {
	case e == nil:
		l.makeRoom(now)
		e = &tenantLimit{lim: rate.NewLimiter(limit, burst)}
		l.m[t] = e
	case err == nil:
		if e.lim.Limit() != limit {
			e.lim.SetLimitAt(now, limit)
		}
		if e.lim.Burst() != burst {
			e.lim.SetBurstAt(now, burst)
		}
	}
	e.checked, e.refreshing = now, false
	return e
}

// makeRoom drops buckets until there is room for one more. Call with mu
// held.
func (l *tenantLimits) makeRoom(now time.Time) {
	if len(l.m) < l.max {
		return
	}
	for t, e := range l.m {
		if !e.refreshing && e.lim.TokensAt(now) >= float64(e.lim.Burst()) {
			delete(l.m, t)
		}
	}
	for len(l.m) >= l.max {
		var oldest kaiwa.TenantID
		var at time.Time
		for t, e := range l.m {
			if oldest == "" || e.used.Before(at) {
				oldest, at = t, e.used
			}
		}
		delete(l.m, oldest)
	}
}
