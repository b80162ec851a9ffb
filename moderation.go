package kaiwa

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Moderator is the one implementation of [Moderation]: the tenant API and
// the UA's NG-word escalation both go through it.
type Moderator struct {
	Store  ModerationStore
	Bus    Publisher
	Events Recorder
}

var _ Moderation = Moderator{}

func checkReason(reason string) error {
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > MaxReasonLen {
		return Errorf(CodeBadRequest, "reason must be valid UTF-8 of at most %d characters", MaxReasonLen)
	}
	return nil
}

func (m Moderator) record(t TenantID, typ, user string, until time.Time, reason string) {
	if m.Events == nil {
		return
	}
	detail := map[string]any{}
	if !until.IsZero() {
		detail["until"] = until.UTC().Format(time.RFC3339)
	}
	if reason != "" {
		detail["reason"] = reason
	}
	var raw json.RawMessage
	if len(detail) > 0 {
		raw, _ = json.Marshal(detail)
	}
	m.Events.Record(Event{Tenant: t, Type: typ, User: user, Detail: raw, TS: Now()})
}

// Sanction implements [Moderation].
func (m Moderator) Sanction(ctx context.Context, s Sanction) error {
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
	now := time.Now()
	if !s.Until.IsZero() && !s.Until.After(now) {
		return Errorf(CodeBadRequest, "until must be in the future")
	}
	s.CreatedAt = now
	if err := m.Store.PutSanction(ctx, s); err != nil {
		return err
	}
	if err := m.Bus.PublishControl(ctx, Control{Kind: kind, Tenant: s.Tenant, User: s.User, Until: s.Until, Reason: s.Reason}); err != nil {
		return err
	}
	m.record(s.Tenant, string(s.Kind), s.User, s.Until, s.Reason)
	return nil
}

// Lift implements [Moderation].
func (m Moderator) Lift(ctx context.Context, t TenantID, user string, kind SanctionKind) error {
	if err := CheckID("user", user); err != nil {
		return err
	}
	if kind != SanctionBan && kind != SanctionMute {
		return Errorf(CodeBadRequest, "unknown sanction %q", kind)
	}
	err := m.Store.DeleteSanction(ctx, t, user, kind)
	if err != nil && !IsCode(err, CodeNotFound) {
		return err
	}
	// Published even when the store had nothing, so that a retry after a
	// failed publish still reaches the sessions and every API process's
	// cache.
	control, event := ControlUnmute, EventUnmute
	if kind == SanctionBan {
		control, event = ControlUnban, EventUnban
	}
	if perr := m.Bus.PublishControl(ctx, Control{Kind: control, Tenant: t, User: user}); perr != nil {
		return perr
	}
	if err != nil {
		return err
	}
	m.record(t, event, user, time.Time{}, "")
	return nil
}

// Kick implements [Moderation].
func (m Moderator) Kick(ctx context.Context, t TenantID, user, reason string) error {
	if err := CheckID("user", user); err != nil {
		return err
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	if err := m.Bus.PublishControl(ctx, Control{Kind: ControlKick, Tenant: t, User: user, Reason: reason}); err != nil {
		return err
	}
	m.record(t, EventKick, user, time.Time{}, reason)
	return nil
}
