package kaiwa

import "context"

// Block makes user block other (or, with unblock, no longer): other's
// messages are not delivered to user in any channel they share, nor in
// history, replays or presence, and other's direct messages to user are
// refused with [CodeBlocked]. The sessions of both users apply it live
// ([ControlBlock], [ControlUnblock]). Events: block, unblock
// (detail.other).
func (c *Core) Block(ctx context.Context, actor string, t TenantID, user, other string, unblock bool) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := CheckID("user", user); err != nil {
		return err
	}
	if err := CheckID("other user", other); err != nil {
		return err
	}
	if user == other {
		return Errorf(CodeBadRequest, "a user cannot block themselves")
	}
	changed, err := c.Player.Block(ctx, t, user, other, unblock)
	if err != nil {
		return err
	}
	kind, typ := ControlBlock, EventBlock
	if unblock {
		kind, typ = ControlUnblock, EventUnblock
	}
	return c.settle(ctx, Control{Kind: kind, Tenant: t, User: user, Other: other}, changed, nil,
		actor, typ, map[string]any{"other": other})
}

// Blocks lists the users user blocks.
func (c *Core) Blocks(ctx context.Context, t TenantID, user string) ([]string, error) {
	if err := CheckID("user", user); err != nil {
		return nil, err
	}
	return c.Player.Blocks(ctx, t, user)
}
