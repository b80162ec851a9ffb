package kaiwa

import "context"

// TenantStore keeps tenants and their API keys.
type TenantStore interface {
	// CreateTenant makes a tenant and its first API key, returned once.
	CreateTenant(ctx context.Context, id TenantID, name string) (apiKey string, err error)
	// Tenants lists every tenant.
	Tenants(ctx context.Context) ([]Tenant, error)
	// RotateKey adds a new API key to the tenant and returns it once.
	// Existing keys stay valid until revoked.
	RotateKey(ctx context.Context, id TenantID) (apiKey string, err error)
	// DisableTenant refuses the tenant's API keys and user tokens from now on.
	DisableTenant(ctx context.Context, id TenantID) error
	// AuthenticateKey returns the tenant an API key belongs to, or a
	// [CodeUnauthorized] error.
	AuthenticateKey(ctx context.Context, apiKey string) (TenantID, error)
	// TenantSettings returns the tenant's settings with defaults applied.
	TenantSettings(ctx context.Context, id TenantID) (Settings, error)
}

// TokenStore issues and resolves user tokens.
type TokenStore interface {
	// IssueToken makes a token for a user of the tenant.
	IssueToken(ctx context.Context, tenant TenantID, req TokenRequest) (IssuedToken, error)
	// ResolveToken returns the identity of a token: [CodeUnauthorized] when it
	// is unknown, revoked or its tenant disabled, [CodeTokenExpired] when
	// expired.
	ResolveToken(ctx context.Context, token string) (Identity, error)
	// RevokeTokens revokes every token of a user and returns how many.
	RevokeTokens(ctx context.Context, tenant TenantID, user string) (int, error)
}

// ChannelStore keeps channels and their persistent membership.
type ChannelStore interface {
	// PutChannel creates or updates a channel; created reports which.
	PutChannel(ctx context.Context, ch Channel) (created bool, err error)
	// DeleteChannel removes a channel and its membership ([CodeNotFound] if
	// absent).
	DeleteChannel(ctx context.Context, tenant TenantID, ch string) error
	// Channel returns a channel, or [CodeNotFound].
	Channel(ctx context.Context, tenant TenantID, ch string) (Channel, error)
	// AddMember makes user a member of ch ([CodeNotFound] if ch does not
	// exist); added is false when it already was.
	AddMember(ctx context.Context, tenant TenantID, ch, user string) (added bool, err error)
	// RemoveMember removes user from ch ([CodeNotFound] if not a member).
	RemoveMember(ctx context.Context, tenant TenantID, ch, user string) error
	// Members lists a channel's members in id order ([CodeNotFound] if ch
	// does not exist).
	Members(ctx context.Context, tenant TenantID, ch string) ([]string, error)
	// IsMember reports whether user is a member of ch.
	IsMember(ctx context.Context, tenant TenantID, ch, user string) (bool, error)
	// MemberChannels lists the channels user is a member of.
	MemberChannels(ctx context.Context, tenant TenantID, user string) ([]string, error)
}

// MessageLog is the durable record of every chat and system message.
type MessageLog interface {
	// AppendMessages stores messages (ID, Seq and Tenant set). It is
	// idempotent: a message already stored (same tenant and id) is skipped,
	// so a writer may retry a batch safely.
	AppendMessages(ctx context.Context, msgs []Message) error
	// Messages returns one page of a tenant's log.
	Messages(ctx context.Context, tenant TenantID, q MessageQuery) (MessagePage, error)
}

// EventLog is the durable record of what happened in a tenant's chat.
type EventLog interface {
	// AppendEvents stores events (ID set by the writer); idempotent by ID.
	AppendEvents(ctx context.Context, events []Event) error
	// Events returns one page of a tenant's events, newest first.
	Events(ctx context.Context, tenant TenantID, q EventQuery) (EventPage, error)
}

// Directory is what a UA needs to know about a tenant, asked of the API
// tier (over the bus) so that UA hosts never hold database credentials.
type Directory interface {
	ResolveToken(ctx context.Context, token string) (Identity, error)
	TenantSettings(ctx context.Context, tenant TenantID) (Settings, error)
	Channel(ctx context.Context, tenant TenantID, ch string) (Channel, error)
	IsMember(ctx context.Context, tenant TenantID, ch, user string) (bool, error)
	MemberChannels(ctx context.Context, tenant TenantID, user string) ([]string, error)
}

// ControlKind names a live change every UA applies at once.
type ControlKind string

// The control kinds.
const (
	// ControlMemberAdded: the user's live sessions join Channel.
	ControlMemberAdded ControlKind = "member_added"
	// ControlMemberRemoved: the user's live sessions leave Channel.
	ControlMemberRemoved ControlKind = "member_removed"
	// ControlChannelDeleted: every live session leaves Channel.
	ControlChannelDeleted ControlKind = "channel_deleted"
	// ControlTokensRevoked: the user's sessions are closed (4001).
	ControlTokensRevoked ControlKind = "tokens_revoked"
	// ControlSettings: the tenant's settings changed; cached copies are dropped.
	ControlSettings ControlKind = "settings"
)

// Control is a live change published by the API tier. User-targeted kinds
// go only to the UAs holding that user's sessions, channel-targeted kinds
// to those with members of the channel, the rest to every UA.
type Control struct {
	Kind    ControlKind `json:"kind"`
	Tenant  TenantID    `json:"tenant"`
	User    string      `json:"user,omitempty"`
	Channel string      `json:"ch,omitempty"`
	Reason  string      `json:"reason,omitempty"`
}

// Delivery is one item the bus hands to a UA for its local sessions:
// exactly one of its fields is set.
type Delivery struct {
	Message  *Message
	Presence *Presence
	Control  *Control
}

// Handler receives deliveries. The bus calls it from one goroutine per
// subscription; it must not block (enqueue and return).
type Handler func(Delivery)

// Subscription is an interest in a subject; Unsubscribe ends it.
type Subscription interface {
	Unsubscribe() error
}

// Publisher puts chat and system messages on the stream and live changes on
// the bus. The UA and the tenant API share it.
type Publisher interface {
	// Publish stores m in the stream and returns it with ID, Seq and TS
	// set. A message with a CID already published by the same user within
	// the de-duplication window returns the first one's ID and Seq.
	Publish(ctx context.Context, m Message) (Message, error)
	// PublishControl sends a live change to the UAs concerned.
	PublishControl(ctx context.Context, c Control) error
}

// Bus is everything a UA needs from the message bus.
type Bus interface {
	Publisher
	// PublishPresence sends an ephemeral join or leave to a channel.
	PublishPresence(ctx context.Context, p Presence) error
	// History returns up to limit messages of a channel before the message
	// with id before (or the newest when before is ""), oldest first.
	History(ctx context.Context, tenant TenantID, ch, before string, limit int) ([]Message, error)
	// SubscribeChannel delivers a channel's messages, presence and
	// channel-targeted controls.
	SubscribeChannel(tenant TenantID, ch string, h Handler) (Subscription, error)
	// SubscribeUser delivers a user's direct messages, system messages to
	// the user, and user-targeted controls.
	SubscribeUser(tenant TenantID, user string, h Handler) (Subscription, error)
	// SubscribeTenants delivers tenant-wide controls of every tenant.
	SubscribeTenants(h Handler) (Subscription, error)
	// Record appends an event to the durable event log. It never blocks the
	// caller for long; an event that cannot be buffered is dropped and
	// counted.
	Record(e Event)
}
