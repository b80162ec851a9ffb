package bench

import (
	"context"
	"time"
)

// Pacer schedules events at a fixed rate without drift: the n-th event is
// due at start + n/rate, computed from the start each time, so late
// events never push later ones back and rounding never accumulates. A
// caller that falls behind gets the overdue events at once (catching up)
// and can read how late it was from the due time.
//
// A Pacer is used by one goroutine.
type Pacer struct {
	start time.Time
	rate  float64 // events per second
	limit int64   // events in all
	n     int64   // the next event's number
}

// NewPacer returns a pacer for limit events at rate per second from start.
func NewPacer(start time.Time, rate float64, limit int64) *Pacer {
	return &Pacer{start: start, rate: rate, limit: limit}
}

// Due returns when event n is due.
func (p *Pacer) Due(n int64) time.Time {
	return p.start.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
}

// Next waits until the next event is due and returns its number and due
// time. ok is false when the limit is reached, end has passed before the
// event is due, or ctx is done; the pacer then stays done.
func (p *Pacer) Next(ctx context.Context, end time.Time) (n int64, due time.Time, ok bool) {
	if p.n >= p.limit || p.rate <= 0 {
		return 0, time.Time{}, false
	}
	due = p.Due(p.n)
	if !due.Before(end) {
		p.limit = p.n
		return 0, time.Time{}, false
	}
	if wait := time.Until(due); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			p.limit = p.n
			return 0, time.Time{}, false
		}
	}
	n = p.n
	p.n++
	return n, due, true
}
