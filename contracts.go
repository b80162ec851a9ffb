package kaiwa

import (
	"context"
	"time"
)

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
	// SetTenantSettings replaces the tenant's settings ([Settings.Check]ed).
	SetTenantSettings(ctx context.Context, id TenantID, s Settings) error
	// APIKeys lists the tenant's API keys (never the keys themselves).
	APIKeys(ctx context.Context, id TenantID) ([]APIKey, error)
	// RevokeKey revokes one of the tenant's API keys ([CodeNotFound] if it
	// has no such key). A tenant cannot revoke its last active key
	// ([CodeConflict]).
	RevokeKey(ctx context.Context, id TenantID, keyID int64) error
}

// APIKey describes one API key of a tenant.
type APIKey struct {
	ID         int64     `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
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
	// Channels lists the tenant's channels of the given kind ("" for all),
	// in name order.
	Channels(ctx context.Context, tenant TenantID, kind ChannelKind) ([]Channel, error)
}

// MessageLog is the durable record of every chat and system message.
type MessageLog interface {
	// AppendMessages stores messages (ID, Seq and Tenant set). It is
	// idempotent: a message already stored (same tenant and id) is skipped,
	// so a writer may retry a batch safely.
	AppendMessages(ctx context.Context, msgs []Message) error
	// Messages returns one page of a tenant's log.
	Messages(ctx context.Context, tenant TenantID, q MessageQuery) (MessagePage, error)
	// DeleteMessage removes a message of channel ch from the log. It leaves
	// a tombstone, so a copy the log writer appends later stays deleted.
	// For an id the log has not seen, a tombstone is written only when
	// pending says the message exists and may still be on its way (the
	// stream held it in ch); otherwise nothing changes, so a tombstone can
	// only ever suppress the message it was written for. existed reports
	// whether the message was in the log and not yet deleted.
	DeleteMessage(ctx context.Context, tenant TenantID, ch, id string, pending bool) (existed bool, err error)
}

// NGStore keeps each tenant's NG-word list.
type NGStore interface {
	// NGList returns the tenant's list (empty lists, policy from settings).
	NGList(ctx context.Context, tenant TenantID) (NGList, error)
	// PutNGList replaces the tenant's words and allow-list, and its policy
	// when l.Policy is not empty.
	PutNGList(ctx context.Context, tenant TenantID, l NGList) (NGList, error)
	// AddNGWords adds words and allow-list entries (and sets the policy
	// when not empty); entries already present are kept once.
	AddNGWords(ctx context.Context, tenant TenantID, l NGList) (NGList, error)
	// DeleteNGWord removes an entry from the words or the allow-list
	// ([CodeNotFound] when in neither).
	DeleteNGWord(ctx context.Context, tenant TenantID, word string) (NGList, error)
}

// ModerationStore keeps bans and mutes.
type ModerationStore interface {
	// PutSanction records (or replaces) a user's ban or mute.
	PutSanction(ctx context.Context, s Sanction) error
	// DeleteSanction lifts a user's ban or mute ([CodeNotFound] if none).
	DeleteSanction(ctx context.Context, tenant TenantID, user string, kind SanctionKind) error
	// Sanctions returns the user's sanctions in force now.
	Sanctions(ctx context.Context, tenant TenantID, user string) ([]Sanction, error)
}

// Recorder appends events to the durable event log without blocking.
type Recorder interface {
	// Record appends e. An event that cannot be buffered is dropped and
	// counted, never waited for.
	Record(e Event)
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
	NGList(ctx context.Context, tenant TenantID) (NGList, error)
	Sanctions(ctx context.Context, tenant TenantID, user string) ([]Sanction, error)
}

// SessionInfo is everything a new session needs to know of its user: the
// token's identity, the sanctions in force and the channels the user is a
// member of; or, in Err, why the token is refused.
type SessionInfo struct {
	Identity  Identity
	Sanctions []Sanction
	Channels  []string
	Err       error
}

// SessionResolver answers many new sessions' lookups at once, so that a
// storm of connects costs a few queries per batch instead of three per
// connection. A [Directory] may implement it.
type SessionResolver interface {
	// ResolveSessions returns one SessionInfo per token, in order.
	ResolveSessions(ctx context.Context, tokens []string) []SessionInfo
}

// Moderation applies sanctions live: it stores them, tells every UA, and
// records the event. It is what a UA asks of the API tier (the escalation
// of repeated NG words); the rules are the [Core]'s, which
// [Core.Moderation] (and [Moderator]) present this way.
type Moderation interface {
	// Sanction bans or mutes a user until s.Until.
	Sanction(ctx context.Context, s Sanction) error
	// Lift ends a user's ban or mute.
	Lift(ctx context.Context, tenant TenantID, user string, kind SanctionKind) error
	// Kick closes the user's sessions now (4003); they may reconnect.
	Kick(ctx context.Context, tenant TenantID, user, reason string) error
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
	// ControlChannelClosed: Channel is closed now; live sessions of
	// non-members leave it.
	ControlChannelClosed ControlKind = "channel_closed"
	// ControlTokensRevoked: the user's sessions are closed (4001).
	ControlTokensRevoked ControlKind = "tokens_revoked"
	// ControlSettings: the tenant's settings changed; cached copies are dropped.
	ControlSettings ControlKind = "settings"
	// ControlKeys: one of the tenant's API keys was revoked, or the tenant
	// disabled; the API processes drop their cached checks of its keys.
	ControlKeys ControlKind = "api_keys"
	// ControlNGWords: the tenant's NG list changed; matchers are rebuilt.
	ControlNGWords ControlKind = "ng_words"
	// ControlKick: the user's sessions are closed (4003) with Reason.
	ControlKick ControlKind = "kick"
	// ControlBan: the user's sessions are closed (4003) and refused until Until.
	ControlBan ControlKind = "ban"
	// ControlMute: the user's say and dm are refused until Until.
	ControlMute ControlKind = "mute"
	// ControlUnmute: a mute was lifted.
	ControlUnmute ControlKind = "unmute"
	// ControlUnban: a ban was lifted (API processes drop cached sanctions).
	ControlUnban ControlKind = "unban"
	// ControlMessageDeleted: message ID of Channel was deleted; clients drop it.
	ControlMessageDeleted ControlKind = "message_deleted"
	// ControlRead: User read Channel up to Seq; the user's sessions are told.
	ControlRead ControlKind = "read"
	// ControlBlock, ControlUnblock: User blocked (unblocked) Other; the
	// sessions of both users apply it.
	ControlBlock   ControlKind = "block"
	ControlUnblock ControlKind = "unblock"
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
	Until   time.Time   `json:"until,omitzero"`
	ID      string      `json:"id,omitempty"`
	Other   string      `json:"other,omitempty"`
	Seq     uint64      `json:"seq,omitempty"`
}

// Handler receives what a subscription delivers, each kind by its own
// function: a chat or system message, a presence change, a live change. A
// nil function drops the deliveries of its kind. The bus calls them in
// arrival order, from one goroutine for all of a subject's deliveries; they
// must not block (enqueue and return).
type Handler struct {
	Message  func(*Message)
	Presence func(*Presence)
	Control  func(*Control)
}

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
	// DeleteMessage removes a message of channel ch from the stream's
	// history ([CodeNotFound] if the stream does not hold it).
	DeleteMessage(ctx context.Context, tenant TenantID, ch, id string) error
}

// BatchPublisher is a [Publisher] that publishes many messages together,
// sharing their round trips (the bus package's does). out[i] and errs[i]
// are the outcome of msgs[i], each as [Publisher.Publish] would give it.
type BatchPublisher interface {
	PublishBatch(ctx context.Context, msgs []Message) (out []Message, errs []error)
}

// Bus is everything a UA needs from the message bus. Recording events is
// not part of it: that is a [Recorder], wired on its own.
type Bus interface {
	Publisher
	// PublishPresence sends an ephemeral join, leave or typing to a
	// channel; a direct channel's typing goes to its other user.
	PublishPresence(ctx context.Context, p Presence) error
	// History returns up to limit messages of a channel before the message
	// with id before (or the newest when before is ""), oldest first.
	History(ctx context.Context, tenant TenantID, ch, before string, limit int) ([]Message, error)
	// Replay returns a channel's messages after seq afterSeq, oldest first
	// (the newest max when there are more); recovered is false when they
	// are not all of the channel's messages since afterSeq.
	Replay(ctx context.Context, tenant TenantID, ch string, afterSeq uint64, max int) (msgs []Message, recovered bool, err error)
	// LastSeq returns the seq of a channel's newest message in the stream
	// (0 when there is none): where live delivery of the channel starts.
	LastSeq(ctx context.Context, tenant TenantID, ch string) (uint64, error)
	// Missed returns the first max messages of a channel with
	// after < seq < before (before 0: up to the newest), oldest first, for
	// repairing a gap in live delivery; complete is false when there are
	// more below before. A message the stream no longer holds (deleted or
	// aged out) is not among them.
	Missed(ctx context.Context, tenant TenantID, ch string, after, before uint64, max int) (msgs []Message, complete bool, err error)
	// SubscribeChannel delivers a channel's messages, presence and
	// channel-targeted controls.
	SubscribeChannel(tenant TenantID, ch string, h Handler) (Subscription, error)
	// SubscribeUser delivers a user's direct messages, system messages to
	// the user, and user-targeted controls.
	SubscribeUser(tenant TenantID, user string, h Handler) (Subscription, error)
	// SubscribeTenants delivers tenant-wide controls of every tenant to f.
	SubscribeTenants(f func(*Control)) (Subscription, error)
	// OnReconnect registers f, called each time the bus connection is
	// back after a loss (with the subscriptions restored): deliveries may
	// have been missed meanwhile.
	OnReconnect(f func())
}

// StreamReader reads single messages and positions of the stream.
type StreamReader interface {
	// Message returns message id of channel ch as the stream holds it
	// ([CodeNotFound] when it holds none such in ch).
	Message(ctx context.Context, tenant TenantID, ch, id string) (Message, error)
	// LastSeq returns the seq of a channel's newest message (0: none).
	LastSeq(ctx context.Context, tenant TenantID, ch string) (uint64, error)
}

// PlayerStore keeps what players do besides sending: reactions, read
// cursors, blocks, and the search index of the message log.
type PlayerStore interface {
	// React adds (or with remove, takes back) user's reaction emoji on
	// message id of ch. changed is false when there was nothing to do;
	// counts are the message's reactions after it. Adding a kind of
	// reaction past [MaxReactionKinds] is [CodeTooLarge].
	React(ctx context.Context, tenant TenantID, ch, id, user, emoji string, remove bool) (changed bool, counts []Reaction, err error)
	// SetCursor moves user's cursor of ch forward to seq (never back)
	// and returns it; moved is false when it was there already.
	SetCursor(ctx context.Context, tenant TenantID, user, ch string, seq uint64) (c Cursor, moved bool, err error)
	// Cursors lists user's cursors in channel order.
	Cursors(ctx context.Context, tenant TenantID, user string) ([]Cursor, error)
	// Unread counts user's unread messages in each of chs.
	Unread(ctx context.Context, tenant TenantID, user string, chs []string) ([]Unread, error)
	// Block makes user block other (or, with unblock, no longer);
	// changed is false when it already was so. More than [MaxBlocks] is
	// [CodeTooLarge].
	Block(ctx context.Context, tenant TenantID, user, other string, unblock bool) (changed bool, err error)
	// Blocks lists the users user blocks, in id order.
	Blocks(ctx context.Context, tenant TenantID, user string) ([]string, error)
	// Blocking reports whether user blocks other.
	Blocking(ctx context.Context, tenant TenantID, user, other string) (bool, error)
	// Search finds messages of the log ([SearchQuery]).
	Search(ctx context.Context, tenant TenantID, q SearchQuery) (SearchPage, error)
	// MessageEdits lists the edits of message id of ch, oldest first.
	MessageEdits(ctx context.Context, tenant TenantID, ch, id string) ([]MessageEdit, error)
}

// PlayerStarter answers many new sessions' player state at once
// ([Players.Start] for each request, in order), so that a storm of
// connects costs a few queries per batch instead of three per connection.
// A [PlayerStore] may implement it; so does [Core.Players].
type PlayerStarter interface {
	StartPlayers(ctx context.Context, reqs []PlayerStartRequest) []PlayerStartResult
}

// EditLog applies edits (change entries of [KindEdit], in stream order)
// to the message log, keeping each edit for operators. The log writer
// calls it; it is idempotent.
type EditLog interface {
	ApplyEdits(ctx context.Context, edits []Message) error
}

// Players is what a UA asks the API tier on a player's behalf: the core's
// rules of editing, deleting, reacting, reading, blocking and searching
// ([Core.Players] presents them this way). user is the player.
type Players interface {
	EditMessage(ctx context.Context, tenant TenantID, user, ch, id, text string) (Message, error)
	DeleteOwnMessage(ctx context.Context, tenant TenantID, user, ch, id string) error
	React(ctx context.Context, tenant TenantID, user, ch, id, emoji string, remove bool) (Message, error)
	MarkRead(ctx context.Context, tenant TenantID, user, ch string, seq uint64) (Cursor, error)
	Unread(ctx context.Context, tenant TenantID, user string, chs []string) ([]Unread, error)
	Block(ctx context.Context, tenant TenantID, user, other string, unblock bool) error
	Blocking(ctx context.Context, tenant TenantID, user, other string) (bool, error)
	Start(ctx context.Context, tenant TenantID, user string, chs []string) (PlayerStart, error)
	Search(ctx context.Context, tenant TenantID, q SearchQuery) (SearchPage, error)
}
