package bus

import (
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/nats-io/nats.go/jetstream"
)

// The event log's path. [Bus.Record] gathers the events a process records
// for a tenant within a moment into one message of the event batch stream
// ([Config.EventBatchStream]): a storm of connects and disconnects, or a
// game server posting system messages one by one, is then a stream message
// per few dozen events instead of one each (its store, acknowledgement,
// delivery to the log writer and the log writer's acknowledgement). The
// log writer drains the stream into the event log and the webhook
// dispatchers deliver from it.
//
// The event stream of single events ([Config.EventStream]) is where the
// release before this one records; it is still drained and delivered from,
// so that what processes of that release record during a roll is kept. A
// process of that release does not read the batch stream at all: its
// messages wait there for the processes of this one, none is skipped.

const (
	// eventLinger is how long a tenant's first pending event waits for
	// others to share its stream message.
	eventLinger = 5 * time.Millisecond
	// maxEventBatch bounds the events of one stream message.
	maxEventBatch = 256
	// maxEventBatchBytes bounds one stream message's size (NATS refuses
	// payloads over its max_payload, 1 MiB by default).
	maxEventBatchBytes = 256 << 10
)

// eventBatcher holds each tenant's pending events until the linger ends
// or the batch is full.
type eventBatcher struct {
	b       *Bus
	mu      sync.Mutex
	pending map[kaiwa.TenantID]*eventBatch
	timer   *time.Timer // runs flush; armed while pending is not empty
	armed   bool
}

// eventBatch is a JSON array being built: "[", then the events, comma
// separated; "]" is added when it is published.
type eventBatch struct {
	buf []byte
	n   int
}

// Record implements [kaiwa.Recorder]: it adds e to its tenant's pending
// batch of the event batch stream, published within [eventLinger] without
// waiting for the acknowledgement. When too many publishes are in flight
// the batch is dropped and its events counted (see [Bus.DroppedEvents]).
func (b *Bus) Record(e kaiwa.Event) {
	if e.TS == 0 {
		e.TS = kaiwa.Now()
	}
	data, err := json.Marshal(&e)
	if err != nil {
		b.droppedEvents.Add(1)
		return
	}
	b.events.add(e.Tenant, data)
}

// DroppedEvents returns how many events [Bus.Record] could not buffer.
func (b *Bus) DroppedEvents() uint64 { return b.droppedEvents.Load() }

// add appends event, encoded, to tenant t's pending batch, and sends the
// batch at once when it is full (or would pass maxEventBatchBytes).
func (q *eventBatcher) add(t kaiwa.TenantID, event []byte) {
	var ready []readyBatch
	q.mu.Lock()
	eb := q.pending[t]
	if eb != nil && len(eb.buf)+1+len(event)+1 > maxEventBatchBytes {
		ready = append(ready, q.takeLocked(t, eb))
		eb = nil
	}
	if eb == nil {
		eb = &eventBatch{buf: append(make([]byte, 0, 2*len(event)+2), '[')}
		if q.pending == nil {
			q.pending = map[kaiwa.TenantID]*eventBatch{}
		}
		q.pending[t] = eb
	} else {
		eb.buf = append(eb.buf, ',')
	}
	eb.buf = append(eb.buf, event...)
	eb.n++
	if eb.n >= maxEventBatch {
		ready = append(ready, q.takeLocked(t, eb))
	} else if !q.armed {
		q.armed = true
		if q.timer == nil {
			q.timer = time.AfterFunc(eventLinger, q.flush)
		} else {
			q.timer.Reset(eventLinger)
		}
	}
	q.mu.Unlock()
	q.publish(ready)
}

// flush publishes every pending batch.
func (q *eventBatcher) flush() {
	q.mu.Lock()
	q.armed = false
	ready := make([]readyBatch, 0, len(q.pending))
	for t, eb := range q.pending {
		ready = append(ready, q.takeLocked(t, eb))
	}
	q.mu.Unlock()
	q.publish(ready)
}

// stop publishes what is pending and stops the timer: the bus is closing.
func (q *eventBatcher) stop() {
	q.flush()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.timer != nil {
		q.timer.Stop()
	}
}

// readyBatch is a tenant's batch taken from pending, to be published.
type readyBatch struct {
	t  kaiwa.TenantID
	eb *eventBatch
}

// takeLocked takes eb, tenant t's batch, from pending and closes its
// array. Call with mu held.
func (q *eventBatcher) takeLocked(t kaiwa.TenantID, eb *eventBatch) readyBatch {
	delete(q.pending, t)
	eb.buf = append(eb.buf, ']')
	return readyBatch{t, eb}
}

// publish sends batches taken from pending, outside the lock: a publish
// that stalls (too many acknowledgements outstanding, up to 50 ms each)
// holds up no one's Record. Batches a tenant fills while another of its
// batches is being sent may reach the stream before it: events are in
// rough order, as webhook deliveries and the event log's ts say.
func (q *eventBatcher) publish(ready []readyBatch) {
	b := q.b
	for _, r := range ready {
		if _, err := b.js.PublishAsync(b.subj.evb(r.t), r.eb.buf, jetstream.WithStallWait(50*time.Millisecond)); err != nil {
			b.droppedEvents.Add(uint64(r.eb.n))
		}
	}
}

// errNoTenant is an event stream message whose subject names no tenant.
var errNoTenant = errors.New("no tenant in the subject")

// eventsOf decodes the events of m, a message of the event stream (one
// event) or, when batched, of the event batch stream (several). Each gets
// its tenant from the subject, whatever its body says, and its id from its
// place in the stream, so that an event written or delivered twice has
// the same id both times.
func (b *Bus) eventsOf(m jetstream.Msg, meta *jetstream.MsgMetadata, batched bool) ([]kaiwa.Event, error) {
	t, _, ok := b.subj.parseTenant(m.Subject())
	if !ok {
		return nil, errNoTenant
	}
	seq := strconv.FormatUint(meta.Sequence.Stream, 10)
	if !batched {
		var e kaiwa.Event
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			return nil, err
		}
		e.Tenant, e.ID = t, "e"+b.evEpoch+"-"+seq
		return []kaiwa.Event{e}, nil
	}
	var events []kaiwa.Event
	if err := json.Unmarshal(m.Data(), &events); err != nil {
		return nil, err
	}
	for i := range events {
		events[i].Tenant, events[i].ID = t, "e"+b.evbEpoch+"-"+seq+"-"+strconv.Itoa(i)
	}
	return events, nil
}
