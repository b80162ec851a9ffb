package ua

import (
	"context"
	"slices"
	"strings"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// PresenceBus answers presence questions across UAs (the bus does, by
// asking every UA at once): this server answers for its own sessions and
// asks for its clients' presence op.
type PresenceBus interface {
	// ServePresence answers every tenant's questions with f.
	ServePresence(f func(t kaiwa.TenantID, ch, user string) kaiwa.PresenceAnswer) (kaiwa.Subscription, error)
	// ChannelPresence asks every UA who is online in a channel.
	ChannelPresence(ctx context.Context, t kaiwa.TenantID, ch string, limit int) (kaiwa.ChannelPresence, error)
}

// opPresence is the client op asking who is online in a joined channel.
const opPresence = "presence"

// servePresence answers presence questions from this server's hub, when
// the config has a [PresenceBus].
func (s *Server) servePresence() (kaiwa.Subscription, error) {
	if s.cfg.Presence == nil {
		return nil, nil
	}
	return s.cfg.Presence.ServePresence(s.hub.presence)
}

// presence is this server's answer: the users of channel ch of tenant t
// it has sessions of, or (ch empty) how many sessions of user it holds.
// It reads the rooms' lock-free snapshots.
func (h *hub) presence(t kaiwa.TenantID, ch, user string) kaiwa.PresenceAnswer {
	if ch == "" {
		k := roomKey{tenant: t, name: user, user: true}
		sh := h.shard(k)
		sh.mu.Lock()
		r := sh.rooms[k]
		sh.mu.Unlock()
		if r == nil {
			return kaiwa.PresenceAnswer{}
		}
		return kaiwa.PresenceAnswer{Sessions: int(r.size.Load())}
	}
	k := roomKey{tenant: t, name: ch}
	sh := h.shard(k)
	sh.mu.Lock()
	r := sh.rooms[k]
	sh.mu.Unlock()
	if r == nil {
		return kaiwa.PresenceAnswer{}
	}
	var users []kaiwa.PresenceUser
	for _, ss := range r.sessions() {
		users = append(users, kaiwa.PresenceUser{User: ss.id.User, Name: ss.id.Name})
	}
	slices.SortFunc(users, func(a, b kaiwa.PresenceUser) int { return strings.Compare(a.User, b.User) })
	return kaiwa.PresenceAnswer{Users: slices.CompactFunc(users, func(a, b kaiwa.PresenceUser) bool { return a.User == b.User })}
}

// outPresence is the reply to the presence op: an "ok" with the channel's
// online users (only their count past the tenant's presence limit).
type outPresence struct {
	Op    string               `json:"op"`
	Ref   string               `json:"ref,omitempty"`
	Ch    string               `json:"ch"`
	Count int                  `json:"count"`
	Users []kaiwa.PresenceUser `json:"users,omitempty"`
}

// opPresenceList answers the presence op for a joined channel.
func (ss *session) opPresenceList(ctx context.Context, c *versions.Command) (any, error) {
	if err := kaiwa.CheckChannel(c.Ch); err != nil {
		return nil, err
	}
	if !ss.joined(c.Ch) {
		return nil, kaiwa.Errorf(kaiwa.CodeNotJoined, "join the channel first")
	}
	if ss.srv.cfg.Presence == nil {
		return nil, kaiwa.Errorf(kaiwa.CodeUnavailable, "presence is not served here")
	}
	p, err := ss.srv.cfg.Presence.ChannelPresence(ctx, ss.id.Tenant, c.Ch, ss.settings().PresenceLimit)
	if err != nil {
		return nil, err
	}
	return outPresence{Op: "ok", Ref: c.Ref, Ch: c.Ch, Count: p.Count, Users: p.Users}, nil
}
