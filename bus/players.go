package bus

import (
	"context"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// The operations a UA asks on a player's behalf ([kaiwa.Players]),
// served beside the directory by [Bus.ServePlayers].
const (
	opEdit     dirOp[editRequest, changeReply]     = "p.edit"
	opDelete   dirOp[deleteRequest, doneReply]     = "p.delete"
	opReact    dirOp[reactRequest, changeReply]    = "p.react"
	opRead     dirOp[readRequest, readReply]       = "p.read"
	opUnread   dirOp[unreadRequest, unreadReply]   = "p.unread"
	opBlock    dirOp[blockRequest, doneReply]      = "p.block"
	opBlocking dirOp[blockingRequest, memberReply] = "p.blocking"
	opStart    dirOp[startRequest, startReply]     = "p.start"
	opSearch   dirOp[searchRequest, searchReply]   = "p.search"
)

type (
	// editRequest edits a player's message.
	editRequest struct {
		User    string `json:"user"`
		Channel string `json:"ch"`
		ID      string `json:"id"`
		Text    string `json:"text"`
	}
	// changeReply is the change entry a request stored (none: id "").
	changeReply struct {
		ID  string `json:"id,omitempty"`
		Seq uint64 `json:"seq,omitempty"`
	}
	// deleteRequest deletes a player's own message.
	deleteRequest struct {
		User    string `json:"user"`
		Channel string `json:"ch"`
		ID      string `json:"id"`
	}
	// reactRequest adds or takes back a reaction.
	reactRequest struct {
		User    string `json:"user"`
		Channel string `json:"ch"`
		ID      string `json:"id"`
		Emoji   string `json:"emoji"`
		Remove  bool   `json:"remove,omitempty"`
	}
	// readRequest moves a read cursor.
	readRequest struct {
		User    string `json:"user"`
		Channel string `json:"ch"`
		Seq     uint64 `json:"seq"`
	}
	// readReply is the cursor after it.
	readReply struct {
		Cursor kaiwa.Cursor `json:"cursor"`
	}
	// unreadRequest asks for unread counts.
	unreadRequest struct {
		User     string   `json:"user"`
		Channels []string `json:"channels"`
	}
	// unreadReply is the counts.
	unreadReply struct {
		Unread []kaiwa.Unread `json:"unread"`
	}
	// blockRequest blocks or unblocks a user.
	blockRequest struct {
		User    string `json:"user"`
		Other   string `json:"other"`
		Unblock bool   `json:"unblock,omitempty"`
	}
	// blockingRequest asks whether User blocks Other.
	blockingRequest struct {
		User  string `json:"user"`
		Other string `json:"other"`
	}
	// startRequest asks what a new session needs of its user's state.
	startRequest struct {
		User     string   `json:"user"`
		Channels []string `json:"channels,omitempty"`
	}
	// startReply is that state.
	startReply struct {
		Start kaiwa.PlayerStart `json:"start"`
	}
	// searchRequest is a player's search.
	searchRequest struct {
		Q        string    `json:"q"`
		Channels []string  `json:"channels,omitempty"`
		User     string    `json:"user,omitempty"`
		Since    time.Time `json:"since,omitzero"`
		Until    time.Time `json:"until,omitzero"`
		Before   string    `json:"before,omitempty"`
		Limit    int       `json:"limit,omitempty"`
	}
	// searchReply is one page of results.
	searchReply struct {
		Page kaiwa.SearchPage `json:"page"`
	}
)

// ServePlayers answers the UAs' requests on players' behalf with p (the
// core's rules, [kaiwa.Core.Players]) on the given number of workers, in
// the directory's queue group, until the subscription is ended. When p is
// a [kaiwa.PlayerStarter], new sessions' player state is answered in
// batches, as [Bus.ServeDirectory] answers session lookups.
func (b *Bus) ServePlayers(p kaiwa.Players, workers int) (kaiwa.Subscription, error) {
	if workers <= 0 {
		workers = 16
	}
	s := &dirServer{b: b}
	pool := s.pool(workers)
	serve(pool, opEdit, func(ctx context.Context, t kaiwa.TenantID, r editRequest) (changeReply, error) {
		m, err := p.EditMessage(ctx, t, r.User, r.Channel, r.ID, r.Text)
		return changeReply{ID: m.ID, Seq: m.Seq}, err
	})
	serve(pool, opDelete, func(ctx context.Context, t kaiwa.TenantID, r deleteRequest) (doneReply, error) {
		return doneReply{}, p.DeleteOwnMessage(ctx, t, r.User, r.Channel, r.ID)
	})
	serve(pool, opReact, func(ctx context.Context, t kaiwa.TenantID, r reactRequest) (changeReply, error) {
		m, err := p.React(ctx, t, r.User, r.Channel, r.ID, r.Emoji, r.Remove)
		return changeReply{ID: m.ID, Seq: m.Seq}, err
	})
	serve(pool, opRead, func(ctx context.Context, t kaiwa.TenantID, r readRequest) (readReply, error) {
		c, err := p.MarkRead(ctx, t, r.User, r.Channel, r.Seq)
		return readReply{Cursor: c}, err
	})
	serve(pool, opUnread, func(ctx context.Context, t kaiwa.TenantID, r unreadRequest) (unreadReply, error) {
		u, err := p.Unread(ctx, t, r.User, r.Channels)
		return unreadReply{Unread: u}, err
	})
	serve(pool, opBlock, func(ctx context.Context, t kaiwa.TenantID, r blockRequest) (doneReply, error) {
		return doneReply{}, p.Block(ctx, t, r.User, r.Other, r.Unblock)
	})
	serve(pool, opBlocking, func(ctx context.Context, t kaiwa.TenantID, r blockingRequest) (memberReply, error) {
		ok, err := p.Blocking(ctx, t, r.User, r.Other)
		return memberReply{Member: ok}, err
	})
	if ps, ok := p.(kaiwa.PlayerStarter); ok {
		// New sessions' player state is answered in batches, as their
		// session lookups are, on workers of its own.
		starts := newBatcher(ps.StartPlayers, kaiwa.PlayerStartResult{Err: directoryBusy()}, b.cfg.Timeout)
		s.batchers = append(s.batchers, starts)
		serve(s.pool(batchWaiters), opStart, func(ctx context.Context, t kaiwa.TenantID, r startRequest) (startReply, error) {
			res := starts.do(ctx, kaiwa.PlayerStartRequest{Tenant: t, User: r.User, Channels: r.Channels})
			return startReply{Start: res.Start}, res.Err
		})
	} else {
		serve(pool, opStart, func(ctx context.Context, t kaiwa.TenantID, r startRequest) (startReply, error) {
			st, err := p.Start(ctx, t, r.User, r.Channels)
			return startReply{Start: st}, err
		})
	}
	serve(pool, opSearch, func(ctx context.Context, t kaiwa.TenantID, r searchRequest) (searchReply, error) {
		page, err := p.Search(ctx, t, kaiwa.SearchQuery{
			Q: r.Q, Channels: r.Channels, User: r.User, Since: r.Since, Until: r.Until, Before: r.Before, Limit: r.Limit,
		})
		return searchReply{Page: page}, err
	})
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Players returns the [kaiwa.Players] that asks the API tier over the
// bus.
func (b *Bus) Players() kaiwa.Players { return dirClient{b} }

var _ kaiwa.Players = dirClient{}

// EditMessage implements [kaiwa.Players].
func (c dirClient) EditMessage(ctx context.Context, t kaiwa.TenantID, user, ch, id, text string) (kaiwa.Message, error) {
	rep, err := call(ctx, c.b, t, opEdit, editRequest{User: user, Channel: ch, ID: id, Text: text})
	return kaiwa.Message{Tenant: t, Channel: ch, ID: rep.ID, Seq: rep.Seq, Kind: kaiwa.KindEdit, Target: id}, err
}

// DeleteOwnMessage implements [kaiwa.Players].
func (c dirClient) DeleteOwnMessage(ctx context.Context, t kaiwa.TenantID, user, ch, id string) error {
	_, err := call(ctx, c.b, t, opDelete, deleteRequest{User: user, Channel: ch, ID: id})
	return err
}

// React implements [kaiwa.Players].
func (c dirClient) React(ctx context.Context, t kaiwa.TenantID, user, ch, id, emoji string, remove bool) (kaiwa.Message, error) {
	rep, err := call(ctx, c.b, t, opReact, reactRequest{User: user, Channel: ch, ID: id, Emoji: emoji, Remove: remove})
	return kaiwa.Message{Tenant: t, Channel: ch, ID: rep.ID, Seq: rep.Seq, Kind: kaiwa.KindReaction, Target: id}, err
}

// MarkRead implements [kaiwa.Players].
func (c dirClient) MarkRead(ctx context.Context, t kaiwa.TenantID, user, ch string, seq uint64) (kaiwa.Cursor, error) {
	rep, err := call(ctx, c.b, t, opRead, readRequest{User: user, Channel: ch, Seq: seq})
	return rep.Cursor, err
}

// Unread implements [kaiwa.Players].
func (c dirClient) Unread(ctx context.Context, t kaiwa.TenantID, user string, chs []string) ([]kaiwa.Unread, error) {
	rep, err := call(ctx, c.b, t, opUnread, unreadRequest{User: user, Channels: chs})
	return rep.Unread, err
}

// Block implements [kaiwa.Players].
func (c dirClient) Block(ctx context.Context, t kaiwa.TenantID, user, other string, unblock bool) error {
	_, err := call(ctx, c.b, t, opBlock, blockRequest{User: user, Other: other, Unblock: unblock})
	return err
}

// Blocking implements [kaiwa.Players].
func (c dirClient) Blocking(ctx context.Context, t kaiwa.TenantID, user, other string) (bool, error) {
	rep, err := call(ctx, c.b, t, opBlocking, blockingRequest{User: user, Other: other})
	return rep.Member, err
}

// Start implements [kaiwa.Players].
func (c dirClient) Start(ctx context.Context, t kaiwa.TenantID, user string, chs []string) (kaiwa.PlayerStart, error) {
	rep, err := call(ctx, c.b, t, opStart, startRequest{User: user, Channels: chs})
	return rep.Start, err
}

// Search implements [kaiwa.Players].
func (c dirClient) Search(ctx context.Context, t kaiwa.TenantID, q kaiwa.SearchQuery) (kaiwa.SearchPage, error) {
	rep, err := call(ctx, c.b, t, opSearch, searchRequest{
		Q: q.Q, Channels: q.Channels, User: q.User, Since: q.Since, Until: q.Until, Before: q.Before, Limit: q.Limit,
	})
	for i := range rep.Page.Messages {
		rep.Page.Messages[i].Tenant = t
	}
	return rep.Page, err
}
