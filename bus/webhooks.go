package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kaiwa-chat/kaiwa"
)

// WebhookDispatcher delivers the tenants' events to their webhooks. Each
// webhook has durable consumers of its own (one on the message stream
// when it asks for messages, one on the event stream when it asks for
// anything else), filtered to its tenant and starting at its creation, so
// that a webhook that is down, or a dispatcher that is, delays only that
// webhook and loses nothing: what is not acknowledged stays in the
// stream. A delivery is acknowledged once the endpoint answered 2xx; a
// failure is delivered again after a backoff that doubles from MinBackoff
// up to MaxBackoff, until the event is MaxAge old, when it is given up.
// Every attempt is recorded ([kaiwa.WebhookStore.RecordDelivery]).
//
// Several dispatchers (one per API process) share the consumers: each
// event goes to one of them at a time. Chat never waits for a webhook: the
// consumers read the streams the chat path writes anyway.
type WebhookDispatcher struct {
	Bus   *Bus
	Store kaiwa.WebhookStore
	// Client posts the deliveries (egress.Policy.Client in production).
	Client *http.Client
	// Offline, when not nil, receives the direct and inbox messages (see
	// [OfflineWatcher]).
	Offline *OfflineWatcher
	// MaxAge is how long an event is retried. Default 24h.
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the wait before a failed delivery
	// is tried again. Defaults 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// AckWait is how long a delivery may stay unanswered before the
	// stream gives the event to another dispatcher (one that died with it
	// in hand). Default 30s; it must exceed the client's timeout.
	AckWait time.Duration
	// Workers is how many deliveries to one webhook are in flight at once
	// per dispatcher. Default 4.
	Workers int
	// Resync is how often the webhooks are listed again, besides when a
	// change is announced. Default 30s.
	Resync time.Duration
	Logger *slog.Logger

	mu      sync.Mutex
	running map[string]*hookRunner // by consumer name prefix
	records chan kaiwa.WebhookDelivery
	kick    chan struct{}

	// sentIDs are the deliveries (webhook/id) of batches not yet done with
	// that have succeeded, and when, so that a batch tried again resumes
	// after them.
	sentMu  sync.Mutex
	sentIDs map[string]time.Time
}

// hookRunner is one webhook's deliveries in this dispatcher.
type hookRunner struct {
	w      kaiwa.Webhook
	cancel context.CancelFunc
	done   chan struct{}
}

func (d *WebhookDispatcher) setDefaults() {
	if d.MaxAge <= 0 {
		d.MaxAge = 24 * time.Hour
	}
	if d.MinBackoff <= 0 {
		d.MinBackoff = time.Second
	}
	if d.MaxBackoff <= 0 {
		d.MaxBackoff = 5 * time.Minute
	}
	if d.AckWait <= 0 {
		d.AckWait = 30 * time.Second
	}
	if d.Workers <= 0 {
		d.Workers = 4
	}
	if d.Resync <= 0 {
		d.Resync = 30 * time.Second
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Client == nil {
		d.Client = &http.Client{Timeout: 10 * time.Second}
	}
}

// Run delivers until ctx ends.
func (d *WebhookDispatcher) Run(ctx context.Context) error {
	d.setDefaults()
	d.running = make(map[string]*hookRunner)
	d.records = make(chan kaiwa.WebhookDelivery, 4096)
	d.kick = make(chan struct{}, 1)
	sub, err := d.Bus.SubscribeTenants(func(c *kaiwa.Control) {
		if c.Kind == kaiwa.ControlWebhooks {
			select {
			case d.kick <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.recordLoop(ctx) }()
	t := time.NewTicker(d.Resync)
	defer t.Stop()
	for first := true; ; first = false {
		d.sync(ctx)
		if first && d.Offline != nil {
			// After the first sync: the watcher asks which tenants want
			// notices.
			wg.Add(1)
			go func() { defer wg.Done(); d.Offline.run(ctx, d) }()
		}
		select {
		case <-ctx.Done():
			d.mu.Lock()
			for _, r := range d.running {
				r.cancel()
				<-r.done
			}
			d.mu.Unlock()
			wg.Wait()
			return nil
		case <-d.kick:
		case <-t.C:
		}
	}
}

// wants reports whether tenant t has a webhook that wants typ, as far as
// this dispatcher knows.
func (d *WebhookDispatcher) wants(t kaiwa.TenantID, typ string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.running {
		if r.w.Tenant == t && r.w.Wants(typ) {
			return true
		}
	}
	return false
}

// sync starts the webhooks that are new and stops (and forgets the
// consumers of) those that were deleted.
func (d *WebhookDispatcher) sync(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	all, err := d.Store.AllWebhooks(lctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			d.Logger.Warn("webhooks: list", "err", err)
		}
		return
	}
	want := make(map[string]kaiwa.Webhook, len(all))
	for _, w := range all {
		want[hookKey(w)] = w
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, r := range d.running {
		if _, ok := want[k]; ok {
			continue
		}
		r.cancel()
		<-r.done
		delete(d.running, k)
		go d.forget(r.w)
	}
	for k, w := range want {
		if _, ok := d.running[k]; ok {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &hookRunner{w: w, cancel: cancel, done: make(chan struct{})}
		d.running[k] = r
		go d.runHook(rctx, r)
	}
}

// hookKey names a webhook's consumers (the id is random, the tenant makes
// it unique whatever ids clients could pick).
func hookKey(w kaiwa.Webhook) string { return "kaiwa-hook-" + w.ID }

// The sources of a webhook's events: the message stream, the event stream
// (the release before's single events) and the event batch stream.
const (
	hookMessages     = "m"
	hookEvents       = "e"
	hookEventBatches = "b"
)

// consumer makes sure the webhook's consumer of a source exists.
func (d *WebhookDispatcher) consumer(ctx context.Context, w kaiwa.Webhook, src string) (jetstream.Consumer, error) {
	b := d.Bus
	stream, filter := b.cfg.Stream, b.subj.tenant(w.Tenant)+".msg.>"
	switch src {
	case hookEvents:
		stream, filter = b.cfg.EventStream, b.subj.evlog(w.Tenant)
	case hookEventBatches:
		stream, filter = b.cfg.EventBatchStream, b.subj.evb(w.Tenant)
	}
	start := w.CreatedAt
	return b.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       hookKey(w) + "-" + src,
		Description:   "webhook " + w.ID + " of tenant " + string(w.Tenant),
		FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &start,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       d.AckWait,
		MaxAckPending: 256,
	})
}

// forget deletes a deleted webhook's consumers.
func (d *WebhookDispatcher) forget(w kaiwa.Webhook) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []struct{ stream, src string }{
		{d.Bus.cfg.Stream, hookMessages}, {d.Bus.cfg.EventStream, hookEvents}, {d.Bus.cfg.EventBatchStream, hookEventBatches},
	} {
		err := d.Bus.js.DeleteConsumer(ctx, s.stream, hookKey(w)+"-"+s.src)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			d.Logger.Warn("webhooks: delete consumer", "webhook", w.ID, "err", err)
		}
	}
}

// runHook delivers one webhook's events until ctx ends.
func (d *WebhookDispatcher) runHook(ctx context.Context, r *hookRunner) {
	defer close(r.done)
	var wg sync.WaitGroup
	for _, src := range []string{hookMessages, hookEvents, hookEventBatches} {
		if src == hookMessages && !r.w.Wants("message") || src != hookMessages && !r.w.WantsEvents() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.consume(ctx, r.w, src)
		}()
	}
	wg.Wait()
}

// consume pulls one source of a webhook and delivers with Workers
// goroutines, until ctx ends; a failing pull is set up again.
func (d *WebhookDispatcher) consume(ctx context.Context, w kaiwa.Webhook, src string) {
	for ctx.Err() == nil {
		c, err := d.consumer(ctx, w, src)
		if err != nil {
			if ctx.Err() == nil {
				d.Logger.Warn("webhooks: consumer", "webhook", w.ID, "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		if err := pullWith(ctx, c, d.Workers, func(m jetstream.Msg) { d.deliver(ctx, w, src, m) }); err != nil {
			d.Logger.Warn("webhooks: pull", "webhook", w.ID, "err", err)
		}
		if ctx.Err() == nil {
			sleep(ctx, time.Second)
		}
	}
}

// hookPayload is the body of a delivery.
type hookPayload struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Tenant  kaiwa.TenantID `json:"tenant"`
	TS      int64          `json:"ts"`
	Message *hookMessage   `json:"message,omitempty"`
	Event   *kaiwa.Event   `json:"event,omitempty"`
}

// hookMessage is a message as a delivery shows it.
type hookMessage struct {
	Channel string          `json:"ch"`
	ID      string          `json:"id"`
	Seq     uint64          `json:"seq"`
	From    string          `json:"from,omitempty"`
	Name    string          `json:"name,omitempty"`
	Text    string          `json:"text"`
	Data    json.RawMessage `json:"data,omitempty"`
	TS      int64           `json:"ts"`
	System  bool            `json:"system,omitempty"`
}

// payloads builds the deliveries of a stream message for w: none when w
// wants none of it (it is acknowledged and skipped), several for a batch
// of events.
func (d *WebhookDispatcher) payloads(w kaiwa.Webhook, src string, m jetstream.Msg, meta *jetstream.MsgMetadata) []hookPayload {
	b := d.Bus
	if src == hookMessages {
		msg, err := b.decodeMessage(m.Subject(), "msg.", m.Data(), meta.Sequence.Stream, 0)
		if err != nil || msg.Tenant != w.Tenant {
			return nil
		}
		return []hookPayload{{ID: "msg-" + msg.ID, Type: "message", Tenant: msg.Tenant, TS: msg.TS, Message: &hookMessage{
			Channel: msg.Channel, ID: msg.ID, Seq: msg.Seq, From: msg.From, Name: msg.Name, Text: msg.Text,
			Data: msg.Data, TS: msg.TS, System: msg.System,
		}}}
	}
	events, err := b.eventsOf(m, meta, src == hookEventBatches)
	if err != nil {
		return nil
	}
	var out []hookPayload
	for i := range events {
		e := &events[i]
		if e.Tenant == w.Tenant && w.Wants(kaiwa.WebhookGroup(e.Type)) {
			out = append(out, hookPayload{ID: "ev-" + e.ID, Type: e.Type, Tenant: e.Tenant, TS: e.TS, Event: e})
		}
	}
	return out
}

// deliver makes one attempt at a stream message: its deliveries in
// order, the message acknowledged once every one has succeeded. When one
// fails the message is tried again later from that delivery on: those of
// a batch that succeeded are not sent again (unless the dispatcher
// restarts meanwhile; deliveries are at least once).
func (d *WebhookDispatcher) deliver(ctx context.Context, w kaiwa.Webhook, src string, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		_ = m.Term()
		return
	}
	ps := d.payloads(w, src, m, meta)
	attempt := int(meta.NumDelivered)
	held := time.Now() // since the stream last heard of the message
	for i := range ps {
		p := &ps[i]
		if len(ps) > 1 && d.sent(w, p.ID) {
			continue
		}
		if time.Since(held) > d.AckWait/3 {
			// A batch's deliveries outlast the ack wait: still working on
			// it, no redelivery to another dispatcher meanwhile.
			_ = m.InProgress()
			held = time.Now()
		}
		body, err := json.Marshal(p)
		if err != nil {
			d.Logger.Warn("webhooks: delivery skipped", "webhook", w.ID, "id", p.ID, "err", err)
			continue
		}
		start := time.Now()
		status, err := d.post(ctx, w, *p, body)
		rec := kaiwa.WebhookDelivery{
			Tenant: w.Tenant, Webhook: w.ID, ID: p.ID, Type: p.Type, Attempt: attempt, Status: status,
			Latency: time.Since(start).Milliseconds(), At: start,
		}
		if err == nil && status/100 == 2 {
			rec.Final = true
			d.record(rec)
			if len(ps) > 1 {
				d.markSent(w, p.ID)
			}
			continue
		}
		if ctx.Err() != nil {
			return // stopped: not acknowledged, delivered again (to whoever runs)
		}
		if err != nil {
			rec.Error = err.Error()
		} else {
			rec.Error = fmt.Sprintf("endpoint answered %d", status)
		}
		if time.Since(meta.Timestamp) > d.MaxAge {
			rec.Final, rec.Error = true, rec.Error+"; given up after "+d.MaxAge.String()
			d.forgetSent(w, ps)
			_ = m.Term()
		} else {
			_ = m.NakWithDelay(d.backoff(attempt))
		}
		d.record(rec)
		return
	}
	d.forgetSent(w, ps)
	if err := m.Ack(); err != nil {
		d.Logger.Warn("webhooks: ack", "webhook", w.ID, "err", err)
	}
}

// sent reports whether delivery id of webhook w already succeeded in an
// earlier attempt at its stream message.
func (d *WebhookDispatcher) sent(w kaiwa.Webhook, id string) bool {
	d.sentMu.Lock()
	defer d.sentMu.Unlock()
	_, ok := d.sentIDs[w.ID+"/"+id]
	return ok
}

// markSent records that delivery id of webhook w succeeded, until its
// stream message is done with ([WebhookDispatcher.forgetSent]).
func (d *WebhookDispatcher) markSent(w kaiwa.Webhook, id string) {
	d.sentMu.Lock()
	defer d.sentMu.Unlock()
	if d.sentIDs == nil {
		d.sentIDs = map[string]time.Time{}
	}
	if len(d.sentIDs) >= maxSentIDs {
		// Batches another dispatcher finished, or whose webhook went:
		// nothing is tried longer than MaxAge.
		for old, at := range d.sentIDs {
			if time.Since(at) > d.MaxAge {
				delete(d.sentIDs, old)
			}
		}
	}
	d.sentIDs[w.ID+"/"+id] = time.Now()
}

// maxSentIDs is how many records of [WebhookDispatcher.sent] are kept
// before the old ones are looked for.
const maxSentIDs = 10_000

// forgetSent drops the records of ps's deliveries: their stream message is
// done with.
func (d *WebhookDispatcher) forgetSent(w kaiwa.Webhook, ps []hookPayload) {
	if len(ps) < 2 {
		return
	}
	d.sentMu.Lock()
	defer d.sentMu.Unlock()
	for i := range ps {
		delete(d.sentIDs, w.ID+"/"+ps[i].ID)
	}
}

// backoff is the wait before attempt+1: MinBackoff doubled per attempt,
// up to MaxBackoff, less up to a fifth at random so that the retries of
// many events spread.
func (d *WebhookDispatcher) backoff(attempt int) time.Duration {
	wait := d.MinBackoff
	for i := 1; i < attempt && wait < d.MaxBackoff; i++ {
		wait *= 2
	}
	wait = min(wait, d.MaxBackoff)
	return wait - time.Duration(rand.Int64N(int64(wait)/5+1))
}

// post sends one delivery and returns the endpoint's status.
func (d *WebhookDispatcher) post(ctx context.Context, w kaiwa.Webhook, p hookPayload, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Kaiwa-Webhook/1")
	req.Header.Set("Kaiwa-Webhook-Id", w.ID)
	req.Header.Set("Kaiwa-Delivery-Id", p.ID)
	req.Header.Set("Kaiwa-Event", p.Type)
	req.Header.Set("Kaiwa-Timestamp", ts)
	req.Header.Set("Kaiwa-Signature", kaiwa.SignWebhook(w.Secret, ts, body))
	resp, err := d.Client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// record queues an attempt's record without waiting; a full queue drops
// it (the delivery itself is not affected).
func (d *WebhookDispatcher) record(r kaiwa.WebhookDelivery) {
	select {
	case d.records <- r:
	default:
		d.Logger.Warn("webhooks: delivery record dropped", "webhook", r.Webhook)
	}
}

// recordLoop writes the attempts' records; when ctx ends, it writes what
// is queued for up to two seconds more.
func (d *WebhookDispatcher) recordLoop(ctx context.Context) {
	// A record is written whole even as the dispatcher stops (its attempt
	// has happened), each within 5 s.
	write := func(ctx context.Context, r kaiwa.WebhookDelivery) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := d.Store.RecordDelivery(rctx, r); err != nil {
			d.Logger.Warn("webhooks: record delivery", "webhook", r.Webhook, "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for last.Err() == nil {
				select {
				case r := <-d.records:
					write(last, r)
				default:
					return
				}
			}
			return
		case r := <-d.records:
			write(ctx, r)
		}
	}
}

// pullWith pulls c continuously and hands each message to f on one of
// workers goroutines, until ctx ends or the pull fails; it returns once
// every f has returned.
func pullWith(ctx context.Context, c jetstream.Consumer, workers int, f func(jetstream.Msg)) error {
	it, err := c.Messages(jetstream.PullMaxMessages(2 * workers))
	if err != nil {
		return err
	}
	defer it.Stop()
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				f(m)
			}
		}()
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			break
		}
		msgs <- m
	}
	close(msgs)
	wg.Wait()
	return nil
}
