package kaiwa

import (
	"context"
	"time"
)

// AddWebhook registers an endpoint of tenant t ([Webhook.Check]ed, its URL
// by the core's URLs) and returns it with its id and secret, which is
// shown only now (made when not given). The API processes start
// delivering to it ([ControlWebhooks]) the events from its creation on.
// Event: webhook_added (detail.id, detail.events).
func (c *Core) AddWebhook(ctx context.Context, actor string, t TenantID, w Webhook) (Webhook, error) {
	if err := checkActor(actor); err != nil {
		return Webhook{}, err
	}
	if err := w.Check(); err != nil {
		return Webhook{}, err
	}
	if c.URLs == nil {
		return Webhook{}, Errorf(CodeUnavailable, "webhooks are not served here")
	}
	if err := c.URLs.CheckURL(ctx, w.URL); err != nil {
		return Webhook{}, err
	}
	w.Tenant, w.ID, w.CreatedAt = t, NewWebhookID(), c.now().UTC().Truncate(time.Millisecond)
	if w.Secret == "" {
		w.Secret = newWebhookSecret()
	}
	if err := c.Webhooks.PutWebhook(ctx, w); err != nil {
		return Webhook{}, err
	}
	err := c.settle(ctx, Control{Kind: ControlWebhooks, Tenant: t, ID: w.ID}, true, nil,
		actor, EventWebhookAdded, map[string]any{"id": w.ID, "events": w.Events})
	return w, err
}

// DeleteWebhook removes webhook id of tenant t ([CodeNotFound] when it has
// none): deliveries to it stop, and what was still to be delivered is
// dropped. Event: webhook_deleted (detail.id).
func (c *Core) DeleteWebhook(ctx context.Context, actor string, t TenantID, id string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	err := c.Webhooks.DeleteWebhook(ctx, t, id)
	if err != nil && !IsCode(err, CodeNotFound) {
		return err
	}
	return c.settle(ctx, Control{Kind: ControlWebhooks, Tenant: t, ID: id}, err == nil, err,
		actor, EventWebhookDeleted, map[string]any{"id": id})
}

// NoticeOffline records that a direct or inbox message (id, in channel
// ch, from user from) reached user, who had no live session: the
// offline_message event (detail.ch, detail.id, detail.from) that the
// tenant's webhooks deliver. Whoever calls it coalesces the notices of a
// user ([OfflineWindow]).
func (c *Core) NoticeOffline(actor string, t TenantID, user, ch, id, from string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	c.record(actor, t, EventOfflineMessage, user, "", map[string]any{"ch": ch, "id": id, "from": from})
	return nil
}

// SetBeforeSend replaces tenant t's before-send configuration
// ([BeforeSend.Check]ed, URLs by the core's URLs), applied live like any
// settings change. Event: settings_changed (detail.before_send, without
// secrets).
func (c *Core) SetBeforeSend(ctx context.Context, actor string, t TenantID, b BeforeSend) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := b.Check(); err != nil {
		return err
	}
	if c.URLs != nil {
		for _, h := range b.Hooks {
			if err := c.URLs.CheckURL(ctx, h.URL); err != nil {
				return err
			}
		}
	}
	s, err := c.Tenants.TenantSettings(ctx, t)
	if err != nil {
		return err
	}
	s.BeforeSend = b
	if err := c.Tenants.SetTenantSettings(ctx, t, s); err != nil {
		return err
	}
	hooks := make([]map[string]string, 0, len(b.Hooks))
	for _, h := range b.Hooks {
		hooks = append(hooks, map[string]string{"prefix": h.Prefix, "url": h.URL})
	}
	return c.settle(ctx, Control{Kind: ControlSettings, Tenant: t}, true, nil, actor, EventSettingsChanged,
		map[string]any{"before_send": map[string]any{"hooks": hooks, "timeout_ms": b.TimeoutMS, "on_timeout": b.OnTimeout}})
}
