package kaiwa

import "context"

// PutChannel creates or updates a channel ([Channel.Check]ed) and returns
// it as stored; created reports which. A channel that is closed now takes
// the live sessions of non-members out of it ([ControlChannelClosed],
// published on every update to closed, so that a retry after a failed
// publish still reaches them). Event: channel_put.
func (c *Core) PutChannel(ctx context.Context, actor string, ch Channel) (stored Channel, created bool, err error) {
	if err := checkActor(actor); err != nil {
		return Channel{}, false, err
	}
	if err := ch.Check(); err != nil {
		return Channel{}, false, err
	}
	if created, err = c.Channels.PutChannel(ctx, ch); err != nil {
		return Channel{}, false, err
	}
	var perr error
	if ch.Kind == ChannelClosed && !created {
		perr = c.Bus.PublishControl(ctx, Control{Kind: ControlChannelClosed, Tenant: ch.Tenant, Channel: ch.Name})
	}
	c.record(actor, ch.Tenant, EventChannelPut, "", ch.Name, map[string]any{"kind": string(ch.Kind), "created": created})
	if perr != nil {
		return Channel{}, created, perr
	}
	stored, err = c.Channels.Channel(ctx, ch.Tenant, ch.Name)
	return stored, created, err
}

// DeleteChannel removes a channel and its membership, and makes every live
// session leave it ([ControlChannelDeleted], published also when the
// channel was already gone). [CodeNotFound] when there was no such
// channel. Event: channel_deleted.
func (c *Core) DeleteChannel(ctx context.Context, actor string, t TenantID, ch string) error {
	if err := checkManagedChannel(actor, ch); err != nil {
		return err
	}
	err := c.Channels.DeleteChannel(ctx, t, ch)
	if err != nil && !IsCode(err, CodeNotFound) {
		return err
	}
	return c.settle(ctx, Control{Kind: ControlChannelDeleted, Tenant: t, Channel: ch}, err == nil, err,
		actor, EventChannelDel, nil)
}

// AddMember makes user a member of channel ch, and the user's live
// sessions join it ([ControlMemberAdded], published also when the user
// already was a member); added is false then. Event: member_added, when
// added.
func (c *Core) AddMember(ctx context.Context, actor string, t TenantID, ch, user string) (added bool, err error) {
	if err := checkMembership(actor, ch, user); err != nil {
		return false, err
	}
	if added, err = c.Channels.AddMember(ctx, t, ch, user); err != nil {
		return false, err
	}
	return added, c.settle(ctx, Control{Kind: ControlMemberAdded, Tenant: t, Channel: ch, User: user}, added, nil,
		actor, EventMemberAdd, nil)
}

// RemoveMember removes user from channel ch, and the user's live sessions
// leave it ([ControlMemberRemoved], published also when the user was not
// a member). [CodeNotFound] when the user was not a member. Event:
// member_removed.
func (c *Core) RemoveMember(ctx context.Context, actor string, t TenantID, ch, user string) error {
	if err := checkMembership(actor, ch, user); err != nil {
		return err
	}
	err := c.Channels.RemoveMember(ctx, t, ch, user)
	if err != nil && !IsCode(err, CodeNotFound) {
		return err
	}
	return c.settle(ctx, Control{Kind: ControlMemberRemoved, Tenant: t, Channel: ch, User: user}, err == nil, err,
		actor, EventMemberRemove, nil)
}

// checkManagedChannel checks the actor and a channel the tenant manages.
func checkManagedChannel(actor, ch string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := CheckChannel(ch); err != nil {
		return err
	}
	return CheckManaged(ch)
}

// checkMembership checks the actor, the channel and the user of a
// membership change.
func checkMembership(actor, ch, user string) error {
	if err := checkManagedChannel(actor, ch); err != nil {
		return err
	}
	return CheckID("user", user)
}
