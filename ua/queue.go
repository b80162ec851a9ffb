package ua

import "sync"

// sendQueue is a session's bounded FIFO of encoded ops, from the hub and
// the session's reader to its writer. Adding never blocks. It holds no
// buffer while empty, so an idle session costs almost nothing, and the
// writer takes everything queued under one lock.
type sendQueue struct {
	mu    sync.Mutex
	items [][]byte
	head  int
	limit int
}

func newSendQueue(limit int) *sendQueue {
	return &sendQueue{limit: limit}
}

// push appends b unless the queue already holds limit items (extra more
// may be allowed for a replay). It reports whether b was queued.
func (q *sendQueue) push(b []byte, extra int) bool {
	q.mu.Lock()
	n := len(q.items) - q.head
	if n >= q.limit+extra {
		q.mu.Unlock()
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) {
		// Reuse the consumed front instead of growing.
		copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, b)
	q.mu.Unlock()
	return true
}

// pop moves up to max queued items to dst and returns it.
func (q *sendQueue) pop(dst [][]byte, max int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, len(q.items)-q.head)
	dst = append(dst, q.items[q.head:q.head+n]...)
	clear(q.items[q.head : q.head+n])
	q.head += n
	if q.head == len(q.items) {
		q.head = 0
		if cap(q.items) > 64 {
			q.items = nil // let a burst's buffer go
		} else {
			q.items = q.items[:0]
		}
	}
	return dst
}

// len returns the number of queued items (0 for a nil queue: a session
// that queues nothing).
func (q *sendQueue) len() int {
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}
