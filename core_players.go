package kaiwa

import "context"

// Players returns the core's rules of what players do as [Players],
// applied by actor (the directory's, [ActorUA]).
func (c *Core) Players(actor string) Players { return actorPlayers{c, actor} }

// actorPlayers is [Core.Players].
type actorPlayers struct {
	c     *Core
	actor string
}

var _ Players = actorPlayers{}

// EditMessage implements [Players].
func (p actorPlayers) EditMessage(ctx context.Context, t TenantID, user, ch, id, text string) (Message, error) {
	return p.c.EditMessage(ctx, p.actor, t, user, ch, id, text)
}

// DeleteOwnMessage implements [Players].
func (p actorPlayers) DeleteOwnMessage(ctx context.Context, t TenantID, user, ch, id string) error {
	return p.c.DeleteOwnMessage(ctx, p.actor, t, user, ch, id)
}

// React implements [Players].
func (p actorPlayers) React(ctx context.Context, t TenantID, user, ch, id, emoji string, remove bool) (Message, error) {
	return p.c.React(ctx, p.actor, t, user, ch, id, emoji, remove)
}

// MarkRead implements [Players].
func (p actorPlayers) MarkRead(ctx context.Context, t TenantID, user, ch string, seq uint64) (Cursor, error) {
	return p.c.MarkRead(ctx, p.actor, t, user, ch, seq)
}

// Unread implements [Players].
func (p actorPlayers) Unread(ctx context.Context, t TenantID, user string, chs []string) ([]Unread, error) {
	return p.c.Unread(ctx, t, user, chs)
}

// Block implements [Players].
func (p actorPlayers) Block(ctx context.Context, t TenantID, user, other string, unblock bool) error {
	return p.c.Block(ctx, p.actor, t, user, other, unblock)
}

// Blocking implements [Players].
func (p actorPlayers) Blocking(ctx context.Context, t TenantID, user, other string) (bool, error) {
	if err := CheckID("user", user); err != nil {
		return false, err
	}
	if err := CheckID("other user", other); err != nil {
		return false, err
	}
	return p.c.Player.Blocking(ctx, t, user, other)
}

// Start implements [Players]: the users user blocks and the unread
// counts of chs, for a new session.
func (p actorPlayers) Start(ctx context.Context, t TenantID, user string, chs []string) (PlayerStart, error) {
	blocks, err := p.c.Blocks(ctx, t, user)
	if err != nil {
		return PlayerStart{}, err
	}
	var unread []Unread
	if len(chs) > 0 {
		if unread, err = p.c.Unread(ctx, t, user, chs); err != nil {
			return PlayerStart{}, err
		}
	}
	return PlayerStart{Blocks: blocks, Unread: unread}, nil
}

var _ PlayerStarter = actorPlayers{}

// StartPlayers implements [PlayerStarter]: each request is checked as
// [Core.Blocks] and [Core.Unread] check it, and those that pass go to the
// store together when it is a [PlayerStarter] (else one by one).
func (p actorPlayers) StartPlayers(ctx context.Context, reqs []PlayerStartRequest) []PlayerStartResult {
	out := make([]PlayerStartResult, len(reqs))
	ps, batched := p.c.Player.(PlayerStarter)
	var (
		ok   []PlayerStartRequest
		from []int // index in reqs of each of ok
	)
	for i, r := range reqs {
		if err := checkUnread(r.User, r.Channels); err != nil {
			out[i].Err = err
			continue
		}
		if !batched {
			out[i].Start, out[i].Err = p.Start(ctx, r.Tenant, r.User, r.Channels)
			continue
		}
		ok = append(ok, r)
		from = append(from, i)
	}
	if len(ok) > 0 {
		for j, res := range ps.StartPlayers(ctx, ok) {
			out[from[j]] = res
		}
	}
	return out
}

// Search implements [Players].
func (p actorPlayers) Search(ctx context.Context, t TenantID, q SearchQuery) (SearchPage, error) {
	return p.c.Search(ctx, t, q)
}
