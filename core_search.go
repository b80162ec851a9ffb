package kaiwa

import "context"

// Search finds messages of tenant t's log ([SearchQuery]); a player's
// search names the channels the player belongs to. Searching changes
// nothing, so nothing is recorded.
func (c *Core) Search(ctx context.Context, t TenantID, q SearchQuery) (SearchPage, error) {
	if err := q.Check(); err != nil {
		return SearchPage{}, err
	}
	return c.Player.Search(ctx, t, q)
}

// MessageEdits lists the edits of message id of channel ch, oldest
// first, for operators.
func (c *Core) MessageEdits(ctx context.Context, t TenantID, ch, id string) ([]MessageEdit, error) {
	if err := CheckChannel(ch); err != nil {
		return nil, err
	}
	return c.Player.MessageEdits(ctx, t, ch, id)
}
