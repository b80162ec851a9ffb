package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds, and fails the test naming what
// when within passes first. It polls after 10 ms, then less and less
// often, up to every 200 ms, so that a condition that calls a server (and
// its rate limit) is not asked hundreds of times.
func Eventually(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	wait := 10 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", within, what)
		}
		time.Sleep(wait)
		wait = min(2*wait, 200*time.Millisecond)
	}
}
