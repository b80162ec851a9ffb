package ua

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// fakeStream is a channel's messages as the stream holds them, for feed
// tests: seqs of other channels interleave (so seqs are not contiguous).
type fakeStream struct {
	mu    sync.Mutex
	msgs  []kaiwa.Message // in seq order
	fails int             // reads that fail before one succeeds
	reads int
	toEnd int // reads up to the newest (no held message bounds them)
}

func (s *fakeStream) read(_ context.Context, after, before uint64, max int) ([]kaiwa.Message, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if before == 0 {
		s.toEnd++
	}
	if s.fails > 0 {
		s.fails--
		return nil, false, errors.New("bus away")
	}
	var out []kaiwa.Message
	for _, m := range s.msgs {
		if m.Seq > after && (before == 0 || m.Seq < before) {
			if len(out) == max {
				return out, false, nil
			}
			out = append(out, m)
		}
	}
	return out, true, nil
}

// chain makes messages of one channel with the given seqs, each naming the
// one before as prev.
func chain(seqs ...uint64) []kaiwa.Message {
	out := make([]kaiwa.Message, len(seqs))
	var prev uint64
	for i, s := range seqs {
		out[i] = kaiwa.Message{Channel: "c", Seq: s, Prev: prev}
		prev = s
	}
	return out
}

// feedRun drives a feed: live messages go through admit; a repair runs
// as the hub runs it. delivered lists the seqs delivered, in order.
type feedRun struct {
	t         *testing.T
	f         feed
	stream    *fakeStream
	most      int
	mu        sync.Mutex
	delivered []uint64
	skips     int
	wg        sync.WaitGroup
}

func (r *feedRun) deliver(m *kaiwa.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// What a repair delivers names the message delivered before it as
	// prev: the sessions see no gap.
	if n := len(r.delivered); n > 0 && m.Prev != r.delivered[n-1] {
		r.t.Errorf("seq %d delivered with prev %d after seq %d", m.Seq, m.Prev, r.delivered[n-1])
	}
	r.delivered = append(r.delivered, m.Seq)
}

func (r *feedRun) live(m kaiwa.Message) {
	now, repair := r.f.admit(&m)
	if now {
		r.deliver(&m)
	}
	if repair {
		most := r.most
		if most == 0 {
			most = 1000
		}
		r.wg.Go(func() {
			repairer{
				read: r.stream.read, deliver: r.deliver, batch: 2, most: most, backoff: time.Millisecond,
				replayed: func(int) {}, failed: func(error) {}, skipped: func() { r.skips++ },
			}.run(&r.f)
		})
	}
}

func (r *feedRun) want(seqs ...uint64) {
	r.t.Helper()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Equal(r.delivered, seqs) {
		r.t.Fatalf("delivered %v, want %v", r.delivered, seqs)
	}
}

func TestFeedRepairsAGapFromTheStream(t *testing.T) {
	all := chain(3, 5, 6, 9, 12, 13, 20)
	r := &feedRun{t: t, stream: &fakeStream{msgs: all, fails: 2}}
	r.live(all[0])
	r.live(all[1])
	// 6, 9 and 12 were missed; 13 reveals it. 20 arrives during the repair.
	r.live(all[5])
	r.live(all[6])
	r.want(3, 5, 6, 9, 12, 13, 20)
	// Live again: in order, no repair; a copy already delivered is dropped.
	r.live(kaiwa.Message{Channel: "c", Seq: 21, Prev: 20})
	r.live(all[6])
	r.want(3, 5, 6, 9, 12, 13, 20, 21)
}

func TestFeedLetsThroughWhatTheStreamNoLongerHolds(t *testing.T) {
	all := chain(1, 2, 3, 4)
	// 3 was deleted from the stream after 4 named it as prev; 4 is
	// delivered with prev 2, the last message the sessions have.
	r := &feedRun{t: t, stream: &fakeStream{msgs: []kaiwa.Message{all[0], all[1], all[3]}}}
	r.live(all[0])
	r.live(all[3])
	r.want(1, 2, 4)
}

// TestFeedRecheckDuringARepairKeepsPrevs: a recheck (the bus came back)
// while a repair waits on a gap reads on to the newest; what it delivers
// still follows on from what was delivered, even past a message the
// stream no longer holds.
func TestFeedRecheckDuringARepairKeepsPrevs(t *testing.T) {
	all := chain(203, 204, 207, 222, 227, 229)
	// 207's successor 215 was deleted; 222 names it as prev.
	all[3].Prev = 215
	stream := &fakeStream{msgs: all, fails: 1}
	r := &feedRun{t: t, stream: stream}
	r.live(all[0])
	r.live(all[3]) // a gap: 204, 207 missed
	r.f.recheck()  // the bus is back: read on to the newest
	r.live(all[4])
	r.wg.Wait()
	r.want(203, 204, 207, 222, 227, 229)
}

func TestFeedSkipsTheRestOfAGapPastItsBound(t *testing.T) {
	seqs := []uint64{1}
	for s := uint64(2); s <= 50; s++ {
		seqs = append(seqs, s)
	}
	all := chain(seqs...)
	r := &feedRun{t: t, stream: &fakeStream{msgs: all}, most: 10}
	r.live(all[0])
	r.live(all[49])
	r.want(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 50)
	if r.skips != 1 {
		t.Errorf("%d skips reported, want 1", r.skips)
	}
}

func TestFeedHoldsBoundedAndReadsOnWhenFull(t *testing.T) {
	var seqs []uint64
	for s := uint64(1); s <= maxHeld+20; s++ {
		seqs = append(seqs, s)
	}
	all := chain(seqs...)
	stream := &fakeStream{msgs: all, fails: 1 << 30} // away until told
	r := &feedRun{t: t, stream: stream, most: len(all)}
	r.live(all[0])
	for _, m := range all[2:] { // 2 missed; the rest held, past the bound
		r.live(m)
	}
	r.f.mu.Lock()
	held := len(r.f.held)
	r.f.mu.Unlock()
	if held > maxHeld {
		t.Fatalf("held %d, bound %d", held, maxHeld)
	}
	stream.mu.Lock()
	stream.fails = 0
	stream.mu.Unlock()
	r.want(seqs...)
	// Past the bound, the repair read the stream on to its newest (the
	// overflow flag itself comes and goes while the repair retries).
	stream.mu.Lock()
	defer stream.mu.Unlock()
	if stream.toEnd == 0 {
		t.Fatal("the repair never read on to the newest message")
	}
}

func TestFeedRepairStopsWhenClosed(t *testing.T) {
	all := chain(1, 2, 3)
	stream := &fakeStream{msgs: all, fails: 1 << 30}
	r := &feedRun{t: t, stream: stream}
	r.live(all[0])
	r.live(all[2])
	r.f.close()
	r.want(1) // returns: the repair gave up
	if now, repair := r.f.admit(&all[1]); now || repair {
		t.Fatal("a closed feed admitted a message")
	}
}
