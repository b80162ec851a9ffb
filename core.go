package kaiwa

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Actors: who makes a change through the [Core], as its events record
// (detail.actor). The console will name its operator's API key
// ("console:" and the key's id).
const (
	// ActorAPI is a call of the tenant API.
	ActorAPI = "api"
	// ActorCLI is an operator's kaiwa command.
	ActorCLI = "cli"
	// ActorUA is a UA acting by itself: the NG-word escalation's mute.
	ActorUA = "ua"
)

// ErrNoActor is returned by a [Core] method called without an actor.
var ErrNoActor = errors.New("kaiwa: no actor named")

// Core holds every rule that changes a tenant's state, each in one method:
// channels, membership, tokens, NG lists, system messages, message
// deletion, settings, API keys, tenants, and moderation. A method checks
// its input, stores the change, publishes the live change every UA applies,
// and records the event, in that order; the tenant API, the kaiwa command
// and the directory (for the UAs) call these methods, and nothing else
// publishes live changes or records the events of changes (the UAs record
// their sessions' own events).
//
// Every method takes the actor making the change ([ActorAPI], [ActorCLI],
// ...), which the event records. A change the store has made is recorded
// even when its live change could not be published: the method then
// returns the publish error, and a retry publishes again (also when the
// store finds the change already made, so that the sessions are reached
// all the same).
//
// A method uses only the dependencies it needs; the others may be nil.
// A Core is safe for concurrent use when its dependencies are.
type Core struct {
	// Tenants keeps tenants, their settings and API keys.
	Tenants TenantStore
	// Tokens issues and revokes user tokens.
	Tokens TokenStore
	// Channels keeps channels and membership.
	Channels ChannelStore
	// Log is the message log deletions change.
	Log MessageLog
	// NG keeps NG-word lists.
	NG NGStore
	// Sanctions keeps bans and mutes.
	Sanctions ModerationStore
	// Signing keeps signing keys and the revocations of signed tokens.
	Signing SigningStore
	// Webhooks keeps the tenants' webhooks; URLs checks the endpoints
	// they name.
	Webhooks WebhookStore
	URLs     URLChecker
	// Bus publishes system messages and live changes, and deletes messages
	// from the stream.
	Bus Publisher
	// Events records the event of every change.
	Events Recorder
	// Stream reads single messages and channel positions (edits,
	// reactions, read cursors).
	Stream StreamReader
	// Player keeps reactions, read cursors, blocks and the search index.
	Player PlayerStore
	// Lookup, when set, answers the reads of the message paths (a
	// tenant's settings, whether a channel exists) in place of Tenants and
	// Channels: a cache that may be a moment stale (a [Directory] cache
	// serves). A change never reads through it.
	Lookup Lookup
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Lookup is what the message paths read of a tenant; [Directory] has these
// methods.
type Lookup interface {
	TenantSettings(ctx context.Context, t TenantID) (Settings, error)
	Channel(ctx context.Context, t TenantID, ch string) (Channel, error)
}

// settingsOf returns tenant t's settings for a message path, through
// [Core.Lookup] when set.
func (c *Core) settingsOf(ctx context.Context, t TenantID) (Settings, error) {
	if c.Lookup != nil {
		return c.Lookup.TenantSettings(ctx, t)
	}
	return c.Tenants.TenantSettings(ctx, t)
}

// channelOf returns channel ch of tenant t for a message path, through
// [Core.Lookup] when set.
func (c *Core) channelOf(ctx context.Context, t TenantID, ch string) (Channel, error) {
	if c.Lookup != nil {
		return c.Lookup.Channel(ctx, t, ch)
	}
	return c.Channels.Channel(ctx, t, ch)
}

// now returns the time of the core's clock.
func (c *Core) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// record appends the event of a change to the event log, without waiting.
// The detail (nil for none) is encoded as the event's, with the actor. An
// event about a user's inbox names the user, with the inbox in its detail:
// inboxes are not channels of the event log.
func (c *Core) record(actor string, t TenantID, typ, user, ch string, detail map[string]any) {
	if detail == nil {
		detail = map[string]any{}
	}
	if u, ok := InboxUser(ch); ok {
		detail["ch"] = ch
		user, ch = u, ""
	}
	detail["actor"] = actor
	// A map of strings, numbers, booleans and settings always encodes.
	raw, _ := json.Marshal(detail)
	c.Events.Record(Event{Tenant: t, Type: typ, User: user, Channel: ch, Detail: raw, TS: c.now().UnixMilli()})
}

// settle ends a change the store made (changed), or found already made
// or absent (storeErr, a [CodeNotFound]): it publishes the live change ctl
// either way, so that a retry after a failed publish still reaches the
// sessions; records the event typ (about ctl's user and channel) when the
// store changed; and returns the publish's error, else storeErr.
func (c *Core) settle(ctx context.Context, ctl Control, changed bool, storeErr error, actor, typ string, detail map[string]any) error {
	perr := c.Bus.PublishControl(ctx, ctl)
	if changed {
		c.record(actor, ctl.Tenant, typ, ctl.User, ctl.Channel, detail)
	}
	if perr != nil {
		return perr
	}
	return storeErr
}

// checkActor refuses a change without an actor: a wiring mistake.
func checkActor(actor string) error {
	if actor == "" {
		return ErrNoActor
	}
	return nil
}
