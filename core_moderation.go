package kaiwa

import (
	"context"
	"time"
	"unicode/utf8"
)

// Sanction bans or mutes a user until s.Until (zero: until lifted),
// replacing a sanction of the same kind, and applies it live ([ControlBan]
// closes the user's sessions and refuses new ones; [ControlMute] refuses
// their say and dm). It returns the sanction as stored, or as asked when
// it is no longer in force. Events: ban, mute (detail.until,
// detail.reason).
func (c *Core) Sanction(ctx context.Context, actor string, s Sanction) (Sanction, error) {
	if err := c.sanction(ctx, actor, s); err != nil {
		return Sanction{}, err
	}
	// The stored sanction carries the time it was made. Should it be gone
	// already (lifted or run out meanwhile), the one asked for is shown.
	s.CreatedAt = c.now()
	inForce, err := c.Sanctions.Sanctions(ctx, s.Tenant, s.User)
	if err != nil {
		return Sanction{}, err
	}
	for _, got := range inForce {
		if got.Kind == s.Kind {
			return got, nil
		}
	}
	return s, nil
}

// sanction is the rule of [Core.Sanction].
func (c *Core) sanction(ctx context.Context, actor string, s Sanction) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := CheckID("user", s.User); err != nil {
		return err
	}
	if err := checkReason(s.Reason); err != nil {
		return err
	}
	var kind ControlKind
	switch s.Kind {
	case SanctionBan:
		kind = ControlBan
	case SanctionMute:
		kind = ControlMute
	default:
		return Errorf(CodeBadRequest, "unknown sanction %q", s.Kind)
	}
	now := c.now()
	if !s.Until.IsZero() && !s.Until.After(now) {
		return Errorf(CodeBadRequest, "until must be in the future")
	}
	s.CreatedAt = now
	if err := c.Sanctions.PutSanction(ctx, s); err != nil {
		return err
	}
	return c.settle(ctx, Control{Kind: kind, Tenant: s.Tenant, User: s.User, Until: s.Until, Reason: s.Reason}, true, nil,
		actor, string(s.Kind), moderationDetail(s.Until, s.Reason))
}

// Lift ends a user's ban or mute, live ([ControlUnban], [ControlUnmute],
// published also when there was none, which is [CodeNotFound]). Events:
// unban, unmute.
func (c *Core) Lift(ctx context.Context, actor string, t TenantID, user string, kind SanctionKind) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := CheckID("user", user); err != nil {
		return err
	}
	control, event := ControlUnmute, EventUnmute
	switch kind {
	case SanctionMute:
	case SanctionBan:
		control, event = ControlUnban, EventUnban
	default:
		return Errorf(CodeBadRequest, "unknown sanction %q", kind)
	}
	err := c.Sanctions.DeleteSanction(ctx, t, user, kind)
	if err != nil && !IsCode(err, CodeNotFound) {
		return err
	}
	return c.settle(ctx, Control{Kind: control, Tenant: t, User: user}, err == nil, err, actor, event, nil)
}

// Kick closes a user's sessions now ([ControlKick], close code 4003, with
// the reason); the user may reconnect. Event: kick (detail.reason), once
// the UAs were told.
func (c *Core) Kick(ctx context.Context, actor string, t TenantID, user, reason string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := CheckID("user", user); err != nil {
		return err
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	if err := c.Bus.PublishControl(ctx, Control{Kind: ControlKick, Tenant: t, User: user, Reason: reason}); err != nil {
		return err
	}
	c.record(actor, t, EventKick, user, "", moderationDetail(time.Time{}, reason))
	return nil
}

// Moderation returns the core's moderation rules as actor applies them,
// for whoever takes a [Moderation]: the directory, which applies the UAs'
// NG-word escalation with [ActorUA].
func (c *Core) Moderation(actor string) Moderation { return actorModeration{c, actor} }

// actorModeration is [Core.Moderation].
type actorModeration struct {
	c     *Core
	actor string
}

// Sanction implements [Moderation].
func (m actorModeration) Sanction(ctx context.Context, s Sanction) error {
	return m.c.sanction(ctx, m.actor, s)
}

// Lift implements [Moderation].
func (m actorModeration) Lift(ctx context.Context, t TenantID, user string, kind SanctionKind) error {
	return m.c.Lift(ctx, m.actor, t, user, kind)
}

// Kick implements [Moderation].
func (m actorModeration) Kick(ctx context.Context, t TenantID, user, reason string) error {
	return m.c.Kick(ctx, m.actor, t, user, reason)
}

// Moderator is [Moderation] over a store, a bus and a recorder alone: the
// core's moderation rules ([Core.Sanction], [Core.Lift], [Core.Kick]) as
// Actor applies them ([ActorUA] when empty). It serves where nothing else
// of the core is needed, such as a UA's tests.
type Moderator struct {
	Store  ModerationStore
	Bus    Publisher
	Events Recorder
	Actor  string
}

var _ Moderation = Moderator{}

func (m Moderator) moderation() Moderation {
	actor := m.Actor
	if actor == "" {
		actor = ActorUA
	}
	return (&Core{Sanctions: m.Store, Bus: m.Bus, Events: m.Events}).Moderation(actor)
}

// Sanction implements [Moderation].
func (m Moderator) Sanction(ctx context.Context, s Sanction) error {
	return m.moderation().Sanction(ctx, s)
}

// Lift implements [Moderation].
func (m Moderator) Lift(ctx context.Context, t TenantID, user string, kind SanctionKind) error {
	return m.moderation().Lift(ctx, t, user, kind)
}

// Kick implements [Moderation].
func (m Moderator) Kick(ctx context.Context, t TenantID, user, reason string) error {
	return m.moderation().Kick(ctx, t, user, reason)
}

// checkReason validates a moderation reason.
func checkReason(reason string) error {
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > MaxReasonLen {
		return Errorf(CodeBadRequest, "reason must be valid UTF-8 of at most %d characters", MaxReasonLen)
	}
	return nil
}

// moderationDetail is the detail of a moderation event.
func moderationDetail(until time.Time, reason string) map[string]any {
	detail := map[string]any{}
	if !until.IsZero() {
		detail["until"] = until.UTC().Format(time.RFC3339)
	}
	if reason != "" {
		detail["reason"] = reason
	}
	return detail
}
