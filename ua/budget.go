package ua

import (
	"sync"
	"time"
)

// replayBudget bounds what resumes replay per user: a token bucket per
// user of this server that holds perMinute messages and refills at that
// rate. It is safe for concurrent use. Full buckets are forgotten now and
// then, so it holds only the users who resumed lately.
type replayBudget struct {
	perMinute float64

	mu      sync.Mutex
	buckets map[budgetKey]*bucket // guarded by mu
	takes   int                   // calls since the last sweep; guarded by mu
}

type budgetKey struct {
	tenant, user string
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newReplayBudget(perMinute int) *replayBudget {
	return &replayBudget{perMinute: float64(perMinute), buckets: make(map[budgetKey]*bucket)}
}

// take grants up to n messages of replay to the user at now and returns
// how many.
func (rb *replayBudget) take(tenant, user string, n int, now time.Time) int {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.takes++
	if rb.takes >= 1024 {
		rb.sweep(now)
	}
	k := budgetKey{tenant, user}
	b := rb.buckets[k]
	if b == nil {
		b = &bucket{tokens: rb.perMinute, at: now}
		rb.buckets[k] = b
	}
	b.tokens = min(rb.perMinute, b.tokens+now.Sub(b.at).Minutes()*rb.perMinute)
	b.at = now
	got := min(n, int(b.tokens))
	b.tokens -= float64(got)
	return got
}

// sweep forgets the buckets that have refilled. Call with mu held.
func (rb *replayBudget) sweep(now time.Time) {
	rb.takes = 0
	for k, b := range rb.buckets {
		if b.tokens+now.Sub(b.at).Minutes()*rb.perMinute >= rb.perMinute {
			delete(rb.buckets, k)
		}
	}
}
