package ua

import (
	"context"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// feed keeps one channel's live deliveries on this server gapless and in
// order, for every session of every version. Each stream message names the
// channel's previous sequence (prev); a message whose prev is newer than
// the last one delivered shows that deliveries were missed (the bus
// connection dropped, a NATS server restarted). The feed then holds live
// messages back while a repair reads the missing ones from the stream and
// delivers them first, so a v1 client, which cannot see a gap, misses
// nothing, and a v2 client sees no gap to resume.
//
// The bus's dispatcher calls [feed.admit]; the repair runs on a goroutine
// of its own and is the only deliverer while repairing is set. mu guards
// every field; it is never held while delivering.
type feed struct {
	mu        sync.Mutex
	last      uint64           // every message up to this seq was delivered or is gone (0: none yet)
	delivered uint64           // seq of the last message delivered
	known     bool             // last is known: the stream said where the channel stood, or a message was delivered
	repairing bool             // a repair goroutine runs and delivers
	held      []*kaiwa.Message // live messages that arrived during the repair, in order
	overflow  bool             // held was full: the repair reads the stream to its end
	closed    bool             // the room is gone: the repair stops
}

// maxHeld bounds the live messages a feed holds during a repair. Past it,
// the held messages are dropped and the repair reads them from the
// stream too.
const maxHeld = 4096

// admit decides what happens to a live message: deliver it now, or not
// (a repair holds it, or it was delivered already). repair is true when
// m revealed a gap and the caller must start the repair.
func (f *feed) admit(m *kaiwa.Message) (deliver, repair bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return false, false
	case f.repairing:
		f.hold(m)
		return false, false
	case f.last != 0 && m.Seq <= f.last:
		return false, false // delivered already (by a repair)
	case f.last == 0 || m.Prev <= f.last:
		f.last, f.delivered, f.known = m.Seq, m.Seq, true
		return true, false
	}
	f.repairing = true
	f.hold(m)
	return false, true
}

// start sets where the channel stood before live delivery began: seq is
// its newest message then (0: none).
func (f *feed) start(seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last, f.delivered, f.known = seq, seq, true
}

// position is the channel's position for a session joining it now: every
// message up to it was delivered before the session joined, or is gone.
// A client resuming from it gets what followed. ok is false when the
// position is not known (the stream did not say, and nothing came yet).
func (f *feed) position() (seq uint64, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.known
}

// hold keeps m for the repair. Call with mu held.
func (f *feed) hold(m *kaiwa.Message) {
	if len(f.held) >= maxHeld {
		clear(f.held)
		f.held = f.held[:0]
		f.overflow = true
		return
	}
	if !f.overflow {
		f.held = append(f.held, m)
	}
}

// recheck asks the feed to read the stream on from its last delivery
// (the bus connection was lost: messages may have been missed with no
// later one to show the gap). It reports whether the caller must run the
// repair; a repair already running reads on by itself.
func (f *feed) recheck() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.last == 0 {
		return false
	}
	f.overflow = true // read to the newest
	if f.repairing {
		return false
	}
	f.repairing = true
	return true
}

// close stops the feed's repair, if one runs.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.held = nil
}

// gapReader reads a channel's missed messages; [kaiwa.Bus.Missed].
type gapReader func(ctx context.Context, after, before uint64, max int) ([]kaiwa.Message, bool, error)

// repairStep is one step of a repair: the next held message to deliver,
// a stretch of the stream to read first, or the end of the repair.
type repairStep struct {
	deliver *kaiwa.Message
	read    bool
	after   uint64
	before  uint64 // 0: up to the newest
}

// next decides the repair's next step and records a delivery decided here.
func (f *feed) next() (repairStep, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		f.repairing = false
		return repairStep{}, false
	}
	for len(f.held) > 0 && f.held[0].Seq <= f.last {
		f.held = f.held[1:]
	}
	switch {
	case f.overflow:
		f.overflow = false
		return repairStep{read: true, after: f.last}, true
	case len(f.held) == 0:
		f.repairing = false
		f.held = nil
		return repairStep{}, false
	case f.held[0].Prev <= f.last:
		m := f.held[0]
		f.held = f.held[1:]
		f.last = m.Seq
		f.handOverLocked(m)
		return repairStep{deliver: m}, true
	}
	return repairStep{read: true, after: f.last, before: f.held[0].Seq}, true
}

// handOverLocked records that the repair delivers m, and makes m's prev
// the message delivered before it: what a repair delivers follows on
// from what the sessions have, even where a message in between is gone
// from the stream. Call with mu held.
func (f *feed) handOverLocked(m *kaiwa.Message) {
	if f.delivered != 0 {
		m.Prev = f.delivered
	}
	f.delivered, f.known = m.Seq, true
}

// handOver is handOverLocked for a message read from the stream, which
// also counts as everything up to its seq.
func (f *feed) handOver(m *kaiwa.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = max(f.last, m.Seq)
	f.handOverLocked(m)
}

// advance records that everything of the channel up to seq has been
// delivered or is no longer in the stream.
func (f *feed) advance(seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = max(f.last, seq)
}

// repairer is what a repair reads from, delivers to and reports to.
type repairer struct {
	read    gapReader
	deliver func(*kaiwa.Message)
	batch   int           // messages read from the stream per call
	most    int           // messages one gap may replay; beyond, the rest is skipped
	backoff time.Duration // first wait after a failed read; doubles up to 2s

	replayed func(n int)     // n missed messages were read and delivered
	failed   func(err error) // a read failed (it is retried)
	skipped  func()          // a gap was larger than most
}

// repair delivers what the gap misses, then what was held, in order,
// until the feed has caught up with live delivery. It reads the stream in
// batches; a read that fails (the bus is still away) is retried with
// backoff until it succeeds or the feed is closed. A gap of more than
// most messages delivers the first most and skips the rest, calling
// skipped once.
func (rp repairer) run(f *feed) {
	wait := rp.backoff
	replayed := 0
	for {
		step, ok := f.next()
		if !ok {
			return
		}
		if step.deliver != nil {
			rp.deliver(step.deliver)
			continue
		}
		if replayed >= rp.most && step.before != 0 {
			// Too much missed: let the held message through.
			rp.skipped()
			f.advance(step.before - 1)
			continue
		}
		msgs, complete, err := rp.read(context.Background(), step.after, step.before, rp.batch)
		if err != nil {
			rp.failed(err)
			if step.before == 0 {
				f.readOn() // the same read, once the stream answers
			}
			if !f.sleep(wait) {
				return
			}
			wait = min(2*wait, 2*time.Second)
			continue
		}
		wait = rp.backoff
		for i := range msgs {
			f.handOver(&msgs[i])
			rp.deliver(&msgs[i])
		}
		replayed += len(msgs)
		rp.replayed(len(msgs))
		switch {
		case complete && step.before != 0:
			// Whatever the stream no longer holds below the held
			// message is gone: it follows now.
			f.advance(step.before - 1)
		case !complete && step.before == 0:
			f.readOn() // more up to the newest
		}
	}
}

// readOn makes the repair's next step read the stream on to its newest.
func (f *feed) readOn() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.overflow = true
}

// sleep waits d unless the feed closes meanwhile; false when closed.
func (f *feed) sleep(d time.Duration) bool {
	time.Sleep(d)
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.closed
}
