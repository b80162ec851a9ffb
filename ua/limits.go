package ua

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// LimitBus shares the UAs' admissions, so that per-user and per-tenant
// message rates hold across UA processes (the bus implements it).
type LimitBus interface {
	PublishCounts(t kaiwa.TenantID, from string, counts map[string]int) error
	SubscribeCounts(f func(t kaiwa.TenantID, from string, counts map[string]int)) (kaiwa.Subscription, error)
}

// Rate windows: a limit of L messages per second holds over a sliding
// window of limitSlots slots of limitTick each. Every tick a UA reports
// what it admitted in it to the others, who add it to their window. A UA
// admits at most L·maxShare/limitSlots messages of a key per tick, so
// what the others have not heard of yet is bounded: over any window the
// UAs together admit at most L + (UAs−1)·L·maxShare/limitSlots (with
// two UAs, 1.2·L), plus what reports lost on the bus leave uncounted.
const (
	limitTick  = 100 * time.Millisecond
	limitSlots = 10
	maxShare   = 2
)

// rateKey is a tenant ("" user) or one of its users.
type rateKey struct {
	t    kaiwa.TenantID
	user string
}

// window is a key's admissions, by slot: slots[i] for the tick i mod
// limitSlots; ticked is the tick slots were last advanced to.
type window struct {
	slots  [limitSlots]int
	ticked int64
	local  int // admitted here since the last report
}

// limiter enforces the tenants' UserMsgsPerSec and TenantMsgsPerSec over
// every UA. Its lock is taken last (after a session's).
type limiter struct {
	id  string // this UA's name in reports
	bus LimitBus
	now func() time.Time

	mu   sync.Mutex
	keys map[rateKey]*window
}

func newLimiter(b LimitBus) *limiter {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return &limiter{id: hex.EncodeToString(r[:]), bus: b, now: time.Now, keys: make(map[rateKey]*window)}
}

// tick returns the tick of t.
func tickOf(t time.Time) int64 { return t.UnixNano() / int64(limitTick) }

// advance moves w to tick now, clearing the slots of the ticks passed.
func (w *window) advance(now int64) {
	if now-w.ticked >= limitSlots {
		w.slots = [limitSlots]int{}
	} else {
		for t := w.ticked + 1; t <= now; t++ {
			w.slots[t%limitSlots] = 0
		}
	}
	if now > w.ticked {
		w.ticked = now
	}
}

func (w *window) sum() int {
	n := 0
	for _, c := range w.slots {
		n += c
	}
	return n
}

// retryAfter is a send refused by a rate; its error reply says when to
// try again.
type retryAfter struct {
	after time.Duration
	err   error
}

func (r *retryAfter) Error() string { return r.err.Error() }
func (r *retryAfter) Unwrap() error { return r.err }

// admit counts a message of user of tenant t against the tenant's rates,
// or refuses it (rate_limited, with when to retry).
func (l *limiter) admit(t kaiwa.TenantID, user string, st kaiwa.Settings) error {
	if st.UserMsgsPerSec <= 0 && st.TenantMsgsPerSec <= 0 {
		return nil
	}
	now := tickOf(l.now())
	type check struct {
		k     rateKey
		limit int
		what  string
	}
	var checks []check
	if st.TenantMsgsPerSec > 0 {
		checks = append(checks, check{rateKey{t, ""}, st.TenantMsgsPerSec, "this title's messages"})
	}
	if st.UserMsgsPerSec > 0 {
		checks = append(checks, check{rateKey{t, user}, st.UserMsgsPerSec, "your messages"})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ws := make([]*window, len(checks))
	for i, c := range checks {
		w := l.keys[c.k]
		if w == nil {
			w = &window{ticked: now}
			l.keys[c.k] = w
		}
		w.advance(now)
		ws[i] = w
		perTick := max(1, c.limit*maxShare/limitSlots)
		if w.sum() >= c.limit || w.local >= perTick {
			// Until the oldest slot with admissions leaves the window.
			wait := limitTick
			for back := int64(limitSlots - 1); back > 0; back-- {
				if w.slots[(now-back)%limitSlots] > 0 {
					wait = time.Duration(limitSlots-back) * limitTick
					break
				}
			}
			return &retryAfter{after: wait, err: kaiwa.Errorf(kaiwa.CodeRateLimited,
				"%s are over %d per second; retry after %d ms", c.what, c.limit, wait.Milliseconds())}
		}
	}
	for _, w := range ws {
		w.slots[now%limitSlots]++
		w.local++
	}
	return nil
}

// add counts admissions another UA reported.
func (l *limiter) add(t kaiwa.TenantID, from string, counts map[string]int) {
	if from == l.id {
		return
	}
	now := tickOf(l.now())
	l.mu.Lock()
	defer l.mu.Unlock()
	for u, n := range counts {
		k := rateKey{t, u}
		w := l.keys[k]
		if w == nil {
			w = &window{ticked: now}
			l.keys[k] = w
		}
		w.advance(now)
		w.slots[now%limitSlots] += n
	}
}

// report sends, per tenant, what this UA admitted since the last report,
// and forgets keys with nothing in their window.
func (l *limiter) report() {
	now := tickOf(l.now())
	out := map[kaiwa.TenantID]map[string]int{}
	l.mu.Lock()
	for k, w := range l.keys {
		w.advance(now)
		if w.local > 0 {
			if out[k.t] == nil {
				out[k.t] = map[string]int{}
			}
			out[k.t][k.user] = w.local
			w.local = 0
		} else if w.sum() == 0 {
			delete(l.keys, k)
		}
	}
	l.mu.Unlock()
	for t, counts := range out {
		// A report the bus loses leaves the others counting less for one
		// window: the limit is looser, never stricter.
		_ = l.bus.PublishCounts(t, l.id, counts)
	}
}

// run reports every tick until quit is closed.
func (l *limiter) run(quit <-chan struct{}) {
	t := time.NewTicker(limitTick)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
			l.report()
		}
	}
}

// startLimits subscribes to the other UAs' reports and starts reporting,
// when the config has a [LimitBus].
func (s *Server) startLimits() (kaiwa.Subscription, error) {
	if s.cfg.Limits == nil {
		return nil, nil
	}
	s.limits = newLimiter(s.cfg.Limits)
	sub, err := s.cfg.Limits.SubscribeCounts(s.limits.add)
	if err != nil {
		return nil, err
	}
	go s.limits.run(s.quit)
	return sub, nil
}

// admitSend applies the tenant's per-user and per-tenant message rates to
// a send of the session's user.
func (ss *session) admitSend() error {
	if ss.srv.limits == nil {
		return nil
	}
	return ss.srv.limits.admit(ss.id.Tenant, ss.id.User, ss.settings())
}
