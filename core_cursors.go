package kaiwa

import "context"

// MarkRead moves user's read cursor of channel ch forward to seq, which
// must not be past the channel's newest message, and tells the user's
// sessions on every device ([ControlRead]) when it moved. A cursor never
// moves back. Reading is not recorded in the event log: it is the
// player's own state, changed far more often than anything operators
// look for.
func (c *Core) MarkRead(ctx context.Context, actor string, t TenantID, user, ch string, seq uint64) (Cursor, error) {
	if err := checkActor(actor); err != nil {
		return Cursor{}, err
	}
	if err := CheckChannel(ch); err != nil {
		return Cursor{}, err
	}
	if err := CheckID("user", user); err != nil {
		return Cursor{}, err
	}
	last, err := c.Stream.LastSeq(ctx, t, ch)
	if err != nil {
		return Cursor{}, err
	}
	if seq > last {
		return Cursor{}, Errorf(CodeBadRequest, "seq %d is past the channel's newest message (%d)", seq, last)
	}
	cur, moved, err := c.Player.SetCursor(ctx, t, user, ch, seq)
	if err != nil || !moved {
		return cur, err
	}
	return cur, c.Bus.PublishControl(ctx, Control{Kind: ControlRead, Tenant: t, User: user, Channel: ch, Seq: cur.Seq})
}

// Cursors lists user's read cursors.
func (c *Core) Cursors(ctx context.Context, t TenantID, user string) ([]Cursor, error) {
	if err := CheckID("user", user); err != nil {
		return nil, err
	}
	return c.Player.Cursors(ctx, t, user)
}

// Unread counts user's unread messages in each of chs ([Unread]).
func (c *Core) Unread(ctx context.Context, t TenantID, user string, chs []string) ([]Unread, error) {
	if err := checkUnread(user, chs); err != nil {
		return nil, err
	}
	return c.Player.Unread(ctx, t, user, chs)
}

// checkUnread checks a count of user's unread messages in chs.
func checkUnread(user string, chs []string) error {
	if err := CheckID("user", user); err != nil {
		return err
	}
	if len(chs) > MaxSearchChannels {
		return Errorf(CodeTooLarge, "at most %d channels", MaxSearchChannels)
	}
	for _, ch := range chs {
		if err := CheckChannel(ch); err != nil {
			return err
		}
	}
	return nil
}
