package kaiwa

import "context"

// React adds user's reaction emoji to message id of channel ch, or with
// remove takes it back; a user has at most one reaction of each emoji on
// a message. The emoji is checked ([CheckEmoji]) and the message must be
// in the stream. When something changed, the counts after it are stored
// in the stream after the message as a change entry of [KindReaction]
// (which the returned message is; zero when nothing changed), delivered
// live and kept for history. Events: reaction_added, reaction_removed
// (detail.id, detail.emoji).
func (c *Core) React(ctx context.Context, actor string, t TenantID, user, ch, id, emoji string, remove bool) (Message, error) {
	if err := checkActor(actor); err != nil {
		return Message{}, err
	}
	if err := CheckChannel(ch); err != nil {
		return Message{}, err
	}
	if err := CheckID("user", user); err != nil {
		return Message{}, err
	}
	st, err := c.settingsOf(ctx, t)
	if err != nil {
		return Message{}, err
	}
	if err := CheckEmoji(emoji, st); err != nil {
		return Message{}, err
	}
	if id == "" || len(id) > MaxRefLen {
		return Message{}, Errorf(CodeBadRequest, "id is required")
	}
	orig, err := c.Stream.Message(ctx, t, ch, id)
	if err != nil {
		return Message{}, err
	}
	changed, counts, err := c.Player.React(ctx, t, ch, orig.ID, user, emoji, remove)
	if err != nil || !changed {
		return Message{}, err
	}
	m, err := c.Bus.Publish(ctx, Message{
		Tenant: t, Channel: ch, Kind: KindReaction, Target: id, From: user,
		Emoji: emoji, Removed: remove, Reactions: counts, TS: c.now().UnixMilli(),
	})
	if err != nil {
		return Message{}, err
	}
	typ := EventReactionAdded
	if remove {
		typ = EventReactionRemoved
	}
	c.record(actor, t, typ, user, ch, map[string]any{"id": id, "emoji": emoji})
	return m, nil
}
