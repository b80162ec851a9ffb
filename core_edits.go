package kaiwa

import (
	"context"
	"time"
)

// EditMessage replaces the text of message id of channel ch by its
// author user, within the tenant's edit window (Settings.EditWindowS)
// of the message's sending. The text is checked as a message's
// ([CheckContent], with the message's data); NG words are the UA's to
// filter before, as for a say. The edit is stored in the stream after
// the message, as a change entry of [KindEdit] (which the returned
// message is): live sessions get it at once, resuming ones in order,
// history shows the message as edited and the log writer applies it to
// the log, which keeps the text before for operators. Event:
// message_edited (detail.id, detail.seq).
func (c *Core) EditMessage(ctx context.Context, actor string, t TenantID, user, ch, id, text string) (Message, error) {
	orig, st, err := c.ownMessage(ctx, actor, t, user, ch, id, "edit")
	if err != nil {
		return Message{}, err
	}
	if err := CheckContent(text, orig.Data, st); err != nil {
		return Message{}, err
	}
	now := c.now().UnixMilli()
	m, err := c.Bus.Publish(ctx, Message{
		Tenant: t, Channel: ch, Kind: KindEdit, Target: id, From: user, Name: orig.Name,
		Text: text, EditedAt: now, TS: now,
	})
	if err != nil {
		return Message{}, err
	}
	c.record(actor, t, EventMsgEdited, user, ch, map[string]any{"id": id, "seq": m.Seq})
	return m, nil
}

// DeleteOwnMessage deletes message id of channel ch for its author user,
// within the tenant's edit window; see [Core.DeleteMessage], which
// operators use at any time. Event: message_deleted (the user its
// author).
func (c *Core) DeleteOwnMessage(ctx context.Context, actor string, t TenantID, user, ch, id string) error {
	if _, _, err := c.ownMessage(ctx, actor, t, user, ch, id, "delete"); err != nil {
		return err
	}
	return c.deleteMessage(ctx, actor, t, ch, id, user)
}

// ownMessage returns message id of ch when user may change it (what):
// its author, within the edit window; and the tenant's settings.
func (c *Core) ownMessage(ctx context.Context, actor string, t TenantID, user, ch, id, what string) (Message, Settings, error) {
	if err := checkActor(actor); err != nil {
		return Message{}, Settings{}, err
	}
	if err := CheckChannel(ch); err != nil {
		return Message{}, Settings{}, err
	}
	if err := CheckID("user", user); err != nil {
		return Message{}, Settings{}, err
	}
	if id == "" || len(id) > MaxRefLen {
		return Message{}, Settings{}, Errorf(CodeBadRequest, "id is required")
	}
	st, err := c.settingsOf(ctx, t)
	if err != nil {
		return Message{}, Settings{}, err
	}
	st = st.WithDefaults()
	orig, err := c.Stream.Message(ctx, t, ch, id)
	if err != nil {
		return Message{}, Settings{}, err
	}
	if orig.System || orig.From != user {
		return Message{}, Settings{}, Errorf(CodeForbidden, "only its author may %s a message", what)
	}
	window := time.Duration(st.EditWindowS) * time.Second
	if c.now().Sub(time.UnixMilli(orig.TS)) > window {
		return Message{}, Settings{}, Errorf(CodeForbidden, "a message can be %sed up to %s after it was sent", trimE(what), window)
	}
	return orig, st, nil
}

// trimE turns "delete" into "delet" so that "ed" makes "deleted".
func trimE(verb string) string {
	if n := len(verb); n > 0 && verb[n-1] == 'e' {
		return verb[:n-1]
	}
	return verb
}
