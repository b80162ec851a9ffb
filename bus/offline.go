package bus

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kaiwa-chat/kaiwa"
)

// OfflineConsumer is the durable consumer of the direct and inbox
// messages the offline watchers read (the API processes share it).
const OfflineConsumer = "kaiwa-offline"

// OfflineWatcher notices direct and inbox messages that reach a user with
// no live session on any UA, for the tenants whose webhooks ask for
// offline_message: it reads them from the stream (a durable consumer the
// dispatchers share), asks whether the recipient is online (Online: a
// presence query to every UA), and calls Notice at most once per user per
// Window (coalesced in this process: with several API processes, a user
// may get one notice from each per window).
type OfflineWatcher struct {
	Online func(ctx context.Context, t kaiwa.TenantID, user string) (bool, error)
	Notice func(t kaiwa.TenantID, user, ch, id, from string) error
	// Window coalesces a user's notices. Default [kaiwa.OfflineWindow].
	Window time.Duration
	// Workers is how many messages are checked at once. Default 16.
	Workers int

	mu   sync.Mutex
	last map[offlineKey]time.Time // guarded by mu
}

type offlineKey struct {
	t    kaiwa.TenantID
	user string
}

// run watches until ctx ends; d tells which tenants want notices.
func (o *OfflineWatcher) run(ctx context.Context, d *WebhookDispatcher) {
	if o.Window <= 0 {
		o.Window = kaiwa.OfflineWindow
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	o.last = make(map[offlineKey]time.Time)
	b := d.Bus
	for ctx.Err() == nil {
		c, err := b.js.CreateOrUpdateConsumer(ctx, b.cfg.Stream, jetstream.ConsumerConfig{
			Durable:        OfflineConsumer,
			Description:    "offline notices of direct and inbox messages",
			FilterSubjects: []string{b.subj.p + ".*.msg.d.>", b.subj.p + ".*.msg.u.>"},
			DeliverPolicy:  jetstream.DeliverNewPolicy,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        30 * time.Second,
			MaxAckPending:  1024,
		})
		if err != nil {
			if ctx.Err() == nil {
				d.Logger.Warn("offline watcher: consumer", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		if err := pullWith(ctx, c, o.Workers, func(m jetstream.Msg) { o.check(ctx, d, m) }); err != nil {
			d.Logger.Warn("offline watcher: pull", "err", err)
		}
		if ctx.Err() == nil {
			sleep(ctx, time.Second)
		}
	}
}

// check notices the recipients of one message who are offline.
func (o *OfflineWatcher) check(ctx context.Context, d *WebhookDispatcher, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		_ = m.Term()
		return
	}
	msg, err := d.Bus.decodeMessage(m.Subject(), "msg.", m.Data(), meta.Sequence.Stream, 0)
	if err != nil || !d.wants(msg.Tenant, kaiwa.EventOfflineMessage) {
		_ = m.Ack()
		return
	}
	var to []string
	if a, b, ok := kaiwa.ParseDM(msg.Channel); ok {
		for _, u := range []string{a, b} {
			if u != msg.From {
				to = append(to, u)
			}
		}
	} else if u, ok := kaiwa.InboxUser(msg.Channel); ok {
		to = append(to, u)
	}
	for _, user := range to {
		k := offlineKey{msg.Tenant, user}
		now := time.Now()
		o.mu.Lock()
		recent := now.Sub(o.last[k]) < o.Window
		o.mu.Unlock()
		if recent {
			continue
		}
		online, err := o.Online(ctx, msg.Tenant, user)
		if err != nil {
			_ = m.NakWithDelay(time.Second)
			return
		}
		if online {
			continue
		}
		o.mu.Lock()
		if now.Sub(o.last[k]) < o.Window {
			o.mu.Unlock()
			continue
		}
		o.last[k] = now
		for k2, t := range o.last {
			if now.Sub(t) >= o.Window {
				delete(o.last, k2)
			}
		}
		o.mu.Unlock()
		if err := o.Notice(msg.Tenant, user, msg.Channel, msg.ID, msg.From); err != nil {
			d.Logger.Warn("offline notice", "tenant", msg.Tenant, "err", err)
		}
	}
	_ = m.Ack()
}
