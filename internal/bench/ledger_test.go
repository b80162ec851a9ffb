package bench

import (
	"encoding/json"
	"sync"
	"testing"
)

func TestLedgerCountsLostAndDuplicated(t *testing.T) {
	// Two publishers of 10 messages each; publisher 0's group has three
	// receivers, publisher 1's two.
	l := NewLedger(2, 10)
	for n := range 10 {
		l.Sent(0, n, true)
		l.Sent(1, n, n != 7) // message 7 of publisher 1 was refused
	}
	r := []*Receiver{l.NewReceiver(), l.NewReceiver(), l.NewReceiver()}
	for n := range 10 {
		for i, rc := range r {
			if i == 2 && n == 4 {
				continue // receiver 2 misses message 4 of publisher 0
			}
			rc.Deliver(0, n)
		}
		if n != 7 && n != 8 {
			r[0].Deliver(1, n)
			r[1].Deliver(1, n)
		}
	}
	r[1].Deliver(0, 3) // a duplicate
	r[1].Deliver(0, 3)
	r[0].Deliver(1, 8)  // only one of two receivers got message 8 of p1
	r[0].Deliver(5, 1)  // no such publisher
	r[0].Deliver(0, 10) // beyond the seqs
	r[2].Deliver(1, 7)  // refused, yet delivered

	if got := r[1].Dups(); got != 2 {
		t.Errorf("receiver 1 duplicates = %d, want 2", got)
	}
	if got := r[0].Foreign(); got != 2 {
		t.Errorf("receiver 0 foreign = %d, want 2", got)
	}
	tal := l.Tally()
	groups := []int{3, 2}
	a := tal.Account(func(p int) int { return groups[p] })
	want := Account{Acked: 19, Expected: 3*10 + 2*9, Delivered: 29 + 17, Lost: 1 + 1, Unacked: 1}
	if a != want {
		t.Fatalf("account %+v, want %+v", a, want)
	}
}

func TestTallyAddsAcrossWorkers(t *testing.T) {
	// Worker A holds publisher 0 and one receiver; worker B the other
	// receiver. Each message must reach both.
	la, lb := NewLedger(1, 100), NewLedger(1, 100)
	ra, rb := la.NewReceiver(), lb.NewReceiver()
	for n := range 100 {
		la.Sent(0, n, true)
		ra.Deliver(0, n)
		if n != 42 && n != 99 {
			rb.Deliver(0, n)
		}
	}
	var tal Tally
	for _, l := range []*Ledger{la, lb} {
		// Through JSON, as from a worker process.
		raw, err := json.Marshal(l.Tally())
		if err != nil {
			t.Fatal(err)
		}
		var part Tally
		if err := json.Unmarshal(raw, &part); err != nil {
			t.Fatal(err)
		}
		if err := tal.Add(part); err != nil {
			t.Fatal(err)
		}
	}
	a := tal.Account(func(int) int { return 2 })
	if a.Lost != 2 || a.Delivered != 198 || a.Expected != 200 || a.Acked != 100 {
		t.Fatalf("account %+v", a)
	}
	if err := tal.Add(NewLedger(2, 100).Tally()); err == nil {
		t.Fatal("tallies of different shapes were added")
	}
}

func TestLedgerSentFromManyGoroutines(t *testing.T) {
	// API publishing acknowledges one publisher's messages on whichever
	// request goroutine got the answer: no acknowledgement may be lost
	// to another one of the same bitset word.
	const seqs = 640
	l := NewLedger(1, seqs)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := g; n < seqs; n += 8 {
				l.Sent(0, n, n%10 != 0)
			}
		}()
	}
	wg.Wait()
	if got := l.AckedCount(0); got != seqs-seqs/10 {
		t.Fatalf("%d acknowledged, want %d", got, seqs-seqs/10)
	}
	pt := l.Tally().Pubs[0]
	if pt.Sent != seqs || pt.Errors != seqs/10 || bitSet(pt.Acked, 0) || !bitSet(pt.Acked, 1) || !bitSet(pt.Acked, seqs-1) {
		t.Fatalf("tally: sent %d, errors %d, acked words %x", pt.Sent, pt.Errors, pt.Acked)
	}
}

func TestReceiverDeliverDoesNotAllocateAfterFirst(t *testing.T) {
	l := NewLedger(1, 1000)
	r := l.NewReceiver()
	r.Deliver(0, 0)
	n := 1
	if a := testing.AllocsPerRun(500, func() { r.Deliver(0, n); n++ }); a != 0 {
		t.Fatalf("Deliver allocates %v times", a)
	}
}
