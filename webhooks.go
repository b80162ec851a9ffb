package kaiwa

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"time"
)

// Webhook is an endpoint of a tenant's that Kaiwa sends events to: each a
// JSON POST signed with Secret (see docs/api.md), delivered at least once,
// with retries, from a durable consumer of its own.
type Webhook struct {
	Tenant TenantID `json:"-"`
	// ID is Kaiwa's ("wh_" and random letters).
	ID  string `json:"id"`
	URL string `json:"url"`
	// Secret signs deliveries; given or made at registration and shown
	// only then.
	Secret string `json:"secret,omitempty"`
	// Events are the event types sent ([WebhookEventTypes], or "*").
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
}

// Webhook event types a tenant may ask for. "message" is every chat,
// direct and system message; "moderation" is kick, ban, unban, mute,
// unmute and message_deleted; "ng" is ng_blocked and ng_masked; the
// others are the event log's types of the same name.
var WebhookEventTypes = []string{
	"message", "join", "leave", "connect", "disconnect", "moderation", "ng", EventOfflineMessage,
}

// EventOfflineMessage is the event of a direct or inbox message that
// reached a user with no live session: one per user per coalescing
// window ([OfflineWindow]).
const EventOfflineMessage = "offline_message"

// OfflineWindow is how long offline notices of one user are coalesced.
const OfflineWindow = 30 * time.Second

// Webhook events of the event log.
const (
	EventWebhookAdded   = "webhook_added"
	EventWebhookDeleted = "webhook_deleted"
)

// ControlWebhooks: the tenant's webhooks changed; API processes start or
// stop their deliveries.
const ControlWebhooks ControlKind = "webhooks"

// Limits of webhooks.
const (
	MaxWebhooks        = 10
	MinWebhookSecret   = 16
	MaxWebhookSecret   = 256
	webhookSecretBytes = 32
)

// WebhookGroup returns the webhook event type an event-log type belongs
// to ("" for none).
func WebhookGroup(eventType string) string {
	switch eventType {
	case EventJoin, EventLeave, EventConnect, EventDisconnect, EventOfflineMessage:
		return eventType
	case EventKick, EventBan, EventUnban, EventMute, EventUnmute, EventMsgDeleted:
		return "moderation"
	case EventNGBlocked, EventNGMasked:
		return "ng"
	}
	return ""
}

// Wants reports whether the webhook is sent events of type typ (one of
// [WebhookEventTypes]).
func (w Webhook) Wants(typ string) bool {
	return typ != "" && (slices.Contains(w.Events, "*") || slices.Contains(w.Events, typ))
}

// WantsEvents reports whether the webhook is sent anything of the event
// log (anything but messages).
func (w Webhook) WantsEvents() bool {
	for _, e := range w.Events {
		if e != "message" {
			return true
		}
	}
	return false
}

// Check validates a webhook a tenant registers, but for its URL (see
// [URLChecker]): known event types, at least one, and a secret of
// [MinWebhookSecret] to [MaxWebhookSecret] bytes when given.
func (w Webhook) Check() error {
	if len(w.Events) == 0 {
		return Errorf(CodeBadRequest, "events must name at least one type (or \"*\")")
	}
	for _, e := range w.Events {
		if e != "*" && !slices.Contains(WebhookEventTypes, e) {
			return Errorf(CodeBadRequest, "unknown event type %q (known: %v, or \"*\")", e, WebhookEventTypes)
		}
	}
	if w.Secret != "" && (len(w.Secret) < MinWebhookSecret || len(w.Secret) > MaxWebhookSecret) {
		return Errorf(CodeBadRequest, "secret must have %d to %d bytes", MinWebhookSecret, MaxWebhookSecret)
	}
	return nil
}

// NewWebhookID returns a fresh webhook id.
func NewWebhookID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "wh_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// newWebhookSecret returns a fresh signing secret.
func newWebhookSecret() string {
	var b [webhookSecretBytes]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// WebhookDelivery is one attempt to deliver an event to a webhook.
type WebhookDelivery struct {
	Tenant  TenantID `json:"-"`
	Webhook string   `json:"-"`
	// ID is the event's idempotency key, the same in every attempt.
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Attempt int       `json:"attempt"`
	Status  int       `json:"status,omitempty"`
	Error   string    `json:"error,omitempty"`
	Latency int64     `json:"latency_ms"`
	At      time.Time `json:"at"`
	// Final says no attempt follows: delivered, or given up.
	Final bool `json:"final,omitempty"`
}

// WebhookStore keeps webhooks and their deliveries' record.
type WebhookStore interface {
	// PutWebhook adds a webhook ([CodeConflict] past [MaxWebhooks]).
	PutWebhook(ctx context.Context, w Webhook) error
	// Webhooks lists the tenant's webhooks, secrets included.
	Webhooks(ctx context.Context, t TenantID) ([]Webhook, error)
	// AllWebhooks lists every tenant's webhooks, secrets included.
	AllWebhooks(ctx context.Context) ([]Webhook, error)
	// DeleteWebhook removes a webhook ([CodeNotFound] if absent).
	DeleteWebhook(ctx context.Context, t TenantID, id string) error
	// RecordDelivery records an attempt.
	RecordDelivery(ctx context.Context, d WebhookDelivery) error
	// Deliveries returns a webhook's latest attempts, newest first
	// ([CodeNotFound] for an unknown webhook).
	Deliveries(ctx context.Context, t TenantID, id string, limit int) ([]WebhookDelivery, error)
}

// URLChecker validates the URL of an endpoint a tenant names (package
// egress implements it with the operator's policy).
type URLChecker interface {
	CheckURL(ctx context.Context, raw string) error
}

// SignWebhook returns the signature of a delivery: "v1=" and the hex
// HMAC-SHA256, keyed with the webhook's secret, of the timestamp (the
// Kaiwa-Timestamp header, seconds since the epoch), a dot, and the body.
func SignWebhook(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}
