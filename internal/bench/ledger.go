package bench

import (
	"fmt"
	"math/bits"
	"sync/atomic"
)

// Ledger is the exact delivery account of a run. Publisher p numbers its
// messages 0, 1, 2, ... (at most seqs of them) and marks each one the
// server acknowledged ([Ledger.Sent]); every receiver counts each message
// once in the ledger, however often it arrives ([Receiver.Deliver]). At
// the end, a message acknowledged to p should have been counted by every
// receiver of p's group: the shortfall is lost, the excess of a receiver
// duplicated.
//
// Sent may be called by several goroutines, for one publisher too (API
// publishing has many requests in flight); Deliver by one goroutine per
// [Receiver]. Both are safe alongside each other.
type Ledger struct {
	seqs  int
	acked [][]atomic.Uint64 // per publisher, a bitset of acknowledged numbers
	got   []atomic.Uint32   // [p*seqs+n]: receivers that counted message n of p
	sent  []atomic.Uint64   // per publisher, messages sent
	errs  []atomic.Uint64   // per publisher, sends refused or failed
}

// NewLedger returns a ledger for pubs publishers of at most seqs messages
// each.
func NewLedger(pubs, seqs int) *Ledger {
	l := &Ledger{
		seqs:  seqs,
		acked: make([][]atomic.Uint64, pubs),
		got:   make([]atomic.Uint32, pubs*seqs),
		sent:  make([]atomic.Uint64, pubs),
		errs:  make([]atomic.Uint64, pubs),
	}
	for p := range l.acked {
		l.acked[p] = make([]atomic.Uint64, (seqs+63)/64)
	}
	return l
}

// Publishers returns the number of publishers.
func (l *Ledger) Publishers() int { return len(l.acked) }

// Seqs returns the most messages one publisher may send.
func (l *Ledger) Seqs() int { return l.seqs }

// Sent records that publisher p sent message n; ok says whether the server
// acknowledged it.
func (l *Ledger) Sent(p, n int, ok bool) {
	l.sent[p].Add(1)
	if !ok {
		l.errs[p].Add(1)
		return
	}
	l.acked[p][n/64].Or(1 << (n % 64))
}

// AckedCount returns how many of publisher p's messages were
// acknowledged. Call it once p's publisher has stopped.
func (l *Ledger) AckedCount(p int) uint64 {
	var n int
	for i := range l.acked[p] {
		n += bits.OnesCount64(l.acked[p][i].Load())
	}
	return uint64(n)
}

// Receiver is one connection's view of the ledger: the set of messages it
// has seen, per publisher, to tell first deliveries from duplicates.
// It is used by one goroutine; its counters may be read by any.
type Receiver struct {
	l       *Ledger
	seen    map[int32][]uint64
	unique  atomic.Uint64
	dups    atomic.Uint64
	foreign atomic.Uint64
}

// NewReceiver returns a receiver counting into l.
func (l *Ledger) NewReceiver() *Receiver {
	return &Receiver{l: l, seen: make(map[int32][]uint64, 2)}
}

// Deliver counts one arrival of message n of publisher p. It reports false
// for a duplicate, and for a message that cannot be part of the run
// (publisher or number out of range), which is counted as foreign.
func (r *Receiver) Deliver(p, n int) bool {
	if p < 0 || p >= len(r.l.acked) || n < 0 || n >= r.l.seqs {
		r.foreign.Add(1)
		return false
	}
	set, ok := r.seen[int32(p)]
	if !ok {
		set = make([]uint64, (r.l.seqs+63)/64)
		r.seen[int32(p)] = set
	}
	w, b := n/64, uint64(1)<<(n%64)
	if set[w]&b != 0 {
		r.dups.Add(1)
		return false
	}
	set[w] |= b
	r.l.got[p*r.l.seqs+n].Add(1)
	r.unique.Add(1)
	return true
}

// Unique returns the messages received at least once.
func (r *Receiver) Unique() uint64 { return r.unique.Load() }

// Dups returns the arrivals of messages already received.
func (r *Receiver) Dups() uint64 { return r.dups.Load() }

// Foreign returns the arrivals that were no message of this run.
func (r *Receiver) Foreign() uint64 { return r.foreign.Load() }

// Tally is a ledger's content, as workers send it to the coordinator:
// per publisher the acknowledged set and the per-message receive counts.
// Tallies of the workers of one run add up with [Tally.Add].
type Tally struct {
	Seqs int        `json:"seqs"`
	Pubs []PubTally `json:"pubs"`
}

// PubTally is one publisher's part of a [Tally].
type PubTally struct {
	Sent   uint64   `json:"sent,omitempty"`
	Errors uint64   `json:"errors,omitempty"`
	Acked  []uint64 `json:"acked,omitempty"` // bitset words; trailing zero words dropped
	Got    []uint32 `json:"got,omitempty"`   // receive count per number; trailing zeros dropped
}

// Tally returns the ledger's content. Call it once publishers and
// receivers have stopped.
func (l *Ledger) Tally() Tally { return l.TallyRange(0, len(l.acked)) }

// TallyRange returns the content of n publishers from the first: a tally
// whose publisher 0 is the ledger's first.
func (l *Ledger) TallyRange(first, n int) Tally {
	t := Tally{Seqs: l.seqs, Pubs: make([]PubTally, n)}
	for i := range n {
		p := first + i
		pt := &t.Pubs[i]
		pt.Sent, pt.Errors = l.sent[p].Load(), l.errs[p].Load()
		acked := l.acked[p]
		end := len(acked)
		for end > 0 && acked[end-1].Load() == 0 {
			end--
		}
		if end > 0 {
			pt.Acked = make([]uint64, end)
			for i := range pt.Acked {
				pt.Acked[i] = acked[i].Load()
			}
		}
		got := l.got[p*l.seqs : (p+1)*l.seqs]
		last := len(got)
		for last > 0 && got[last-1].Load() == 0 {
			last--
		}
		if last > 0 {
			pt.Got = make([]uint32, last)
			for n := range pt.Got {
				pt.Got[n] = got[n].Load()
			}
		}
	}
	return t
}

// Add adds o (another worker's tally of the same run) to t.
func (t *Tally) Add(o Tally) error {
	if t.Pubs == nil {
		t.Seqs, t.Pubs = o.Seqs, make([]PubTally, len(o.Pubs))
	}
	if o.Seqs != t.Seqs || len(o.Pubs) != len(t.Pubs) {
		return fmt.Errorf("tallies of different runs: %d×%d and %d×%d", len(t.Pubs), t.Seqs, len(o.Pubs), o.Seqs)
	}
	for p := range o.Pubs {
		a, b := &t.Pubs[p], &o.Pubs[p]
		a.Sent += b.Sent
		a.Errors += b.Errors
		for len(a.Acked) < len(b.Acked) {
			a.Acked = append(a.Acked, 0)
		}
		for i, w := range b.Acked {
			a.Acked[i] |= w
		}
		for len(a.Got) < len(b.Got) {
			a.Got = append(a.Got, 0)
		}
		for n, c := range b.Got {
			a.Got[n] += c
		}
	}
	return nil
}

// Account is what a tally says about delivery.
type Account struct {
	// Acked is the number of messages the server acknowledged.
	Acked uint64
	// Expected is the number of deliveries of acknowledged messages due
	// (each times the receivers of its publisher's group).
	Expected uint64
	// Delivered counts first deliveries of acknowledged messages.
	Delivered uint64
	// Lost is Expected − Delivered: deliveries that never came.
	Lost uint64
	// Unacked counts deliveries of messages whose send was not
	// acknowledged (refused or timed out, yet delivered).
	Unacked uint64
}

// Account compares the tally with expectations: receivers(p) is the
// number of receivers that should have received every message of
// publisher p.
func (t *Tally) Account(receivers func(p int) int) Account {
	var a Account
	for p, pt := range t.Pubs {
		want := uint64(max(receivers(p), 0))
		for w, word := range pt.Acked {
			a.Acked += uint64(bits.OnesCount64(word))
			for word != 0 {
				n := w*64 + bits.TrailingZeros64(word)
				word &= word - 1
				var got uint64
				if n < len(pt.Got) {
					got = uint64(pt.Got[n])
				}
				a.Expected += want
				a.Delivered += min(got, want)
				if got < want {
					a.Lost += want - got
				}
			}
		}
		for n, c := range pt.Got {
			if c > 0 && !bitSet(pt.Acked, n) {
				a.Unacked += uint64(c)
			}
		}
	}
	return a
}

func bitSet(set []uint64, n int) bool {
	w := n / 64
	return w < len(set) && set[w]&(1<<(n%64)) != 0
}
