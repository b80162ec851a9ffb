package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/egress"
)

// runWebhooks delivers the tenants' webhooks, and their offline notices,
// until ctx ends.
func runWebhooks(ctx context.Context, b *bus.Bus, store kaiwa.WebhookStore, core *kaiwa.Core, policy egress.Policy, log *slog.Logger) {
	d := &bus.WebhookDispatcher{
		Bus: b, Store: store, Client: policy.Client(10 * time.Second), Logger: log,
		Offline: &bus.OfflineWatcher{
			Online: func(ctx context.Context, t kaiwa.TenantID, user string) (bool, error) {
				p, err := b.UserOnline(ctx, t, user, false)
				return p.Online, err
			},
			Notice: func(t kaiwa.TenantID, user, ch, id, from string) error {
				return core.NoticeOffline(kaiwa.ActorAPI, t, user, ch, id, from)
			},
		},
	}
	if err := d.Run(ctx); err != nil {
		log.Error("webhooks stopped", "err", err)
	}
}
