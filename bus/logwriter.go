package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/stats"
	"github.com/nats-io/nats.go/jetstream"
)

// LogWriter drains the streams into the message and event logs. It reads
// batches from durable consumers, writes each batch in one call, and
// acknowledges only after the write succeeded: while MySQL is unreachable
// the batch is retried with backoff and everything else waits in the
// stream, so nothing is lost; a batch written twice (after a crash between
// write and ack) is skipped by the logs' idempotent append.
//
// Several log writers may run at once (one per API process): the durable
// consumers share the work.
type LogWriter struct {
	Bus    *Bus
	Log    kaiwa.MessageLog
	Events kaiwa.EventLog
	// Batch is the most messages written at once. Default 1000.
	Batch int
	// MaxWait bounds how long a batch gathers after its first message.
	// Default 250ms.
	MaxWait time.Duration
	// MaxBackoff bounds the wait between retries of a failed write. Default 5s.
	MaxBackoff time.Duration
	// AckWait is how long the stream waits for a delivered message to be
	// acknowledged before it delivers it again: after a log writer dies
	// with messages in hand, another has them after this long (a message
	// written twice is skipped by the log). A batch whose write is being
	// retried is kept from redelivery meanwhile. Default 10s.
	AckWait time.Duration
	Logger  *slog.Logger
}

// Durable consumer names of the log writer.
const (
	MessageLogConsumer    = "kaiwa-log-messages"
	EventLogConsumer      = "kaiwa-log-events"
	EventBatchLogConsumer = "kaiwa-log-event-batches"
)

// Run writes until ctx is cancelled.
func (w *LogWriter) Run(ctx context.Context) error {
	if w.Batch <= 0 {
		w.Batch = 1000
	}
	if w.MaxWait <= 0 {
		w.MaxWait = 250 * time.Millisecond
	}
	if w.MaxBackoff <= 0 {
		w.MaxBackoff = 5 * time.Second
	}
	if w.AckWait <= 0 {
		w.AckWait = 10 * time.Second
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	b := w.Bus
	mc, err := b.js.CreateOrUpdateConsumer(ctx, b.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       MessageLogConsumer,
		Description:   "writes chat and system messages to the MySQL message log",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.AckWait,
		MaxAckPending: 100_000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("message log consumer: %w", err)
	}
	eventConsumer := func(stream, name, what string) (jetstream.Consumer, error) {
		c, err := b.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable:       name,
			Description:   "writes " + what + " to the MySQL event log",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       w.AckWait,
			MaxAckPending: 100_000,
		})
		if err != nil {
			return nil, fmt.Errorf("%s consumer: %w", name, err)
		}
		return c, nil
	}
	ec, err := eventConsumer(b.cfg.EventStream, EventLogConsumer, "events")
	if err != nil {
		return err
	}
	bc, err := eventConsumer(b.cfg.EventBatchStream, EventBatchLogConsumer, "batches of events")
	if err != nil {
		return err
	}
	for _, log := range []string{"messages", "events"} {
		b.met.writeErrs.WithLabelValues(log) // exported from the start, at 0
	}
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); w.watchPending(ctx, 5*time.Second) }()
	go func() { defer wg.Done(); w.drain(ctx, mc, w.Batch, w.writeMessages) }()
	go func() { defer wg.Done(); w.drain(ctx, ec, w.Batch, w.writeEvents(false)) }()
	// A batch message holds up to maxEventBatch events: fewer messages
	// make a write of about as many events.
	go func() { defer wg.Done(); w.drain(ctx, bc, max(1, w.Batch/16), w.writeEvents(true)) }()
	wg.Wait()
	return nil
}

// gatherPause ends a batch that has waited this long for its next
// message. Each batch is one MySQL transaction (the messages and their say
// events) and its round trips, so at a few hundred messages a second a
// batch should gather tens of them: with 5 ms, batches of a few messages
// cost the API process and MySQL about 200 µs more per message in the
// 40,000 deliveries/s fan-out (docs/benchmarks.md, "Log writer batches").
// MaxWait still bounds a batch.
const gatherPause = 25 * time.Millisecond

// gather sends batches from it until ctx ends or the pull fails: a batch
// is what arrives, up to size messages, from its first message until a
// pause of gatherPause or MaxWait has passed.
func (w *LogWriter) gather(ctx context.Context, it jetstream.MessagesContext, size int, batches chan<- []jetstream.Msg) {
	pause := min(gatherPause, w.MaxWait)
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() == nil {
				w.Logger.Warn("log writer pull", "err", err)
				sleep(ctx, time.Second)
			}
			return
		}
		batch := make([]jetstream.Msg, 1, size)
		batch[0] = m
		end := time.Now().Add(w.MaxWait)
		for len(batch) < size && time.Now().Before(end) {
			m, err := it.Next(jetstream.NextMaxWait(pause))
			if err != nil {
				break // a pause (or a failure the next Next reports)
			}
			batch = append(batch, m)
		}
		select {
		case batches <- batch:
		case <-ctx.Done():
			return
		}
	}
}

// Lag returns how many messages wait to be written to the message log.
func (w *LogWriter) Lag(ctx context.Context) (uint64, error) {
	c, err := w.Bus.js.Consumer(ctx, w.Bus.cfg.Stream, MessageLogConsumer)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

type writeFunc func(ctx context.Context, batch []jetstream.Msg) error

// drain writes what c delivers, in batches of up to size messages, until
// ctx ends.
func (w *LogWriter) drain(ctx context.Context, c jetstream.Consumer, size int, write writeFunc) {
	// One goroutine gathers the next batch while this one writes the
	// current: the round trips to NATS and to MySQL overlap.
	batches := make(chan []jetstream.Msg, 1)
	go func() {
		defer close(batches)
		for ctx.Err() == nil {
			// A continuous pull on one subscription: a message the server
			// sends is received whenever it comes (a one-shot fetch that
			// expired as the message left the server would drop it, and it
			// would come back only after the ack wait).
			it, err := c.Messages(jetstream.PullMaxMessages(2 * size))
			if err != nil {
				w.Logger.Warn("log writer pull", "err", err)
				sleep(ctx, time.Second)
				continue
			}
			w.gather(ctx, it, size, batches)
			it.Stop()
		}
	}()
	for batch := range batches {
		backoff := 100 * time.Millisecond
		held := time.Now() // since the stream last heard of the batch
		for {
			err := write(ctx, batch)
			if err == nil {
				break
			}
			if time.Since(held) > w.AckWait/3 {
				// Still working on it: no redelivery to another writer.
				for _, m := range batch {
					_ = m.InProgress()
				}
				held = time.Now()
			}
			if kaiwa.IsCode(err, kaiwa.CodeBadRequest) {
				// The log stored the valid entries and refused the rest:
				// retrying cannot help.
				w.Logger.Error("log writer: entries refused by the log", "batch", len(batch), "err", err)
				break
			}
			if ctx.Err() != nil {
				return // not acknowledged: redelivered to the next writer
			}
			w.Logger.Error("log writer: write failed, retrying", "batch", len(batch), "err", err, "retry_in", backoff)
			sleep(ctx, backoff)
			backoff = min(backoff*2, w.MaxBackoff)
		}
		// Every message is acknowledged by itself, and only once written: a
		// message the server delivered to a fetch that had already given
		// up is then redelivered after the ack wait, never skipped.
		for _, m := range batch {
			if err := m.Ack(); err != nil {
				w.Logger.Warn("log writer ack", "err", err)
				break
			}
		}
	}
}

func (w *LogWriter) writeMessages(ctx context.Context, batch []jetstream.Msg) error {
	msgs := make([]kaiwa.Message, 0, len(batch))
	var edits []kaiwa.Message
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		msg, err := w.Bus.decodeMessage(m.Subject(), "msg.", m.Data(), meta.Sequence.Stream, 0)
		if err != nil {
			w.Logger.Error("log writer: undecodable message skipped", "seq", meta.Sequence.Stream, "err", err)
			continue
		}
		switch msg.Kind {
		case "":
			msgs = append(msgs, *msg)
		case kaiwa.KindEdit:
			edits = append(edits, *msg)
		}
		// Reactions are kept by the API tier as they are made; the
		// stream's copy is for live delivery and history only.
	}
	if len(msgs) > 0 {
		if err := w.Log.AppendMessages(ctx, msgs); err != nil {
			w.Bus.met.writeErrs.WithLabelValues("messages").Inc()
			return err
		}
	}
	if el, ok := w.Log.(kaiwa.EditLog); ok && len(edits) > 0 {
		// After the batch's messages: an edit follows its message.
		if err := el.ApplyEdits(ctx, edits); err != nil {
			w.Bus.met.writeErrs.WithLabelValues("messages").Inc()
			return err
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	w.committed(msgs)
	// The event log's say events come from the same batch: who said what
	// where (the text stays in the message log), at no cost to the UAs.
	// Their ids derive from the message ids, so a retried batch adds
	// nothing twice.
	says := make([]kaiwa.Event, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		if m.System || m.From == "" {
			continue
		}
		says = append(says, kaiwa.Event{
			Tenant: m.Tenant, ID: "say-" + m.ID, Type: kaiwa.EventSay, User: m.From, Channel: m.Channel, TS: m.TS,
			Detail: json.RawMessage(`{"id":` + strconv.Quote(m.ID) + `}`),
		})
	}
	if len(says) == 0 {
		return nil
	}
	return w.Events.AppendEvents(ctx, says)
}

// writeEvents returns the write of a batch of the event stream's
// messages, or when batched of the event batch stream's.
func (w *LogWriter) writeEvents(batched bool) writeFunc {
	return func(ctx context.Context, batch []jetstream.Msg) error {
		var events []kaiwa.Event
		for _, m := range batch {
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			evs, err := w.Bus.eventsOf(m, meta, batched)
			if err != nil {
				w.Logger.Error("log writer: undecodable event skipped", "seq", meta.Sequence.Stream, "err", err)
				continue
			}
			events = append(events, evs...)
		}
		return w.appendEvents(ctx, events)
	}
}

// appendEvents writes events to the event log and counts them.
func (w *LogWriter) appendEvents(ctx context.Context, events []kaiwa.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := w.Events.AppendEvents(ctx, events); err != nil {
		w.Bus.met.writeErrs.WithLabelValues("events").Inc()
		return err
	}
	met := w.Bus.met
	met.batch.WithLabelValues("events").Observe(float64(len(events)))
	for i := range events {
		met.written.WithLabelValues("events", string(events[i].Tenant)).Inc()
	}
	return nil
}

// committed counts a batch of messages written to the log: by tenant, its
// size, and each message's lag from publish to commit.
func (w *LogWriter) committed(msgs []kaiwa.Message) {
	met, book := w.Bus.met, w.Bus.book
	now := time.Now()
	met.batch.WithLabelValues("messages").Observe(float64(len(msgs)))
	lag := met.lag.WithLabelValues("messages")
	for i := range msgs {
		m := &msgs[i]
		d := now.Sub(time.UnixMilli(m.TS))
		met.written.WithLabelValues("messages", string(m.Tenant)).Inc()
		lag.Observe(max(d, 0).Seconds())
		book.Add(m.Tenant, stats.Written, 1)
		book.Lag(m.Tenant, d)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
