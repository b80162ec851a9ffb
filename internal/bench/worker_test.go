package bench

import (
	"testing"
	"time"
)

// deliverWorker returns a worker of one client for pubs publishers of
// seqs messages, with no server behind it.
func deliverWorker(tb testing.TB, pubs, seqs int) (*worker, *benchConn) {
	tb.Helper()
	w, err := newWorker(Plan{URLs: []string{"ws://127.0.0.1:1/v1/ws"}, Conns: []PlanConn{{Group: 0}},
		NumPubs: pubs, Seqs: seqs, NumGroups: 1})
	if err != nil {
		tb.Fatal(err)
	}
	return w, w.conns[0]
}

// TestDeliver: what a client's reader hands over counts as before the
// reader did it itself: first deliveries with their latency, duplicates,
// and anything that is no message of the run as foreign.
func TestDeliver(t *testing.T) {
	w, bc := deliverWorker(t, 2, 10)
	sent := time.Now().Add(-3 * time.Millisecond).UnixNano()
	w.deliver(bc, AppendPayload(nil, Payload{P: 1, N: 4, T: sent}, 100))
	w.deliver(bc, AppendPayload(nil, Payload{P: 1, N: 4, T: sent}, 0)) // again
	w.deliver(bc, AppendPayload(nil, Payload{P: 0, N: 9, T: sent}, 0))
	for _, foreign := range [][]byte{nil, []byte(`{"a":1}`), []byte(`{"p":1,"n":4}`),
		AppendPayload(nil, Payload{P: 2, N: 0, T: sent}, 0), AppendPayload(nil, Payload{P: 0, N: 10, T: sent}, 0)} {
		w.deliver(bc, foreign)
	}
	if got := w.delivered[0].Load(); got != 2 {
		t.Errorf("delivered %d, want 2", got)
	}
	if n, lat := w.latency[0].Count(), w.latency[0].Min(); n != 2 || lat < 3*time.Millisecond {
		t.Errorf("latency: %d samples, min %v; want 2 of at least 3ms", n, lat)
	}
	if d, f := bc.rcv.Dups(), bc.rcv.Foreign(); d != 1 || f != 5 {
		t.Errorf("dups %d, foreign %d; want 1 and 5", d, f)
	}
	if w.lastDelivery.Load() == 0 {
		t.Error("no last delivery time")
	}
}

// BenchmarkDeliver is the load tool's own work per delivered message, once
// the client has read the op: parse the payload, count it in the ledger,
// record its latency.
func BenchmarkDeliver(b *testing.B) {
	w, bc := deliverWorker(b, 1, b.N)
	data := make([]byte, 0, 128)
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		data = AppendPayload(data[:0], Payload{P: 0, N: i, T: now}, 100)
		w.deliver(bc, data)
	}
	b.StopTimer()
	if got := w.delivered[0].Load(); got != uint64(b.N) {
		b.Fatalf("delivered %d of %d", got, b.N)
	}
}
