package bus

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kaiwa-chat/kaiwa"
)

// Presence questions go to every UA at once (core NATS, no queue group)
// on P.T.pq; each UA that has sessions concerned answers with what it
// holds, and the asker gathers the answers for a window. A UA that died
// answers nothing, so its sessions leave presence at once: the bound is
// the next question.

// presenceQuestion asks about a channel or a user of the subject's tenant.
type presenceQuestion struct {
	Channel string `json:"ch,omitempty"`
	User    string `json:"user,omitempty"`
}

// DefaultPresenceWindow is how long a channel presence question gathers
// answers.
const DefaultPresenceWindow = 150 * time.Millisecond

func (s subjects) pq(t kaiwa.TenantID) string { return s.tenant(t) + ".pq" }

// ServePresence answers presence questions of every tenant with f
// (channel ch, or user when ch is empty), from NATS's own goroutine: f
// must be quick. A UA with nothing to say stays silent.
func (b *Bus) ServePresence(f func(t kaiwa.TenantID, ch, user string) kaiwa.PresenceAnswer) (kaiwa.Subscription, error) {
	sub, err := b.nc.Subscribe(b.subj.p+".*.pq", func(m *nats.Msg) {
		t, _, ok := b.subj.parseTenant(m.Subject)
		if !ok || m.Reply == "" {
			return
		}
		var q presenceQuestion
		if json.Unmarshal(m.Data, &q) != nil {
			return
		}
		a := f(t, q.Channel, q.User)
		if len(a.Users) == 0 && a.Sessions == 0 {
			return
		}
		data, err := json.Marshal(a)
		if err == nil {
			_ = m.Respond(data)
		}
	})
	if err != nil {
		return nil, unavailable("serve presence", err)
	}
	g := &group{b: b, subs: []*nats.Subscription{sub}}
	if err := b.flush(); err != nil {
		_ = g.Unsubscribe()
		return nil, unavailable("serve presence", err)
	}
	return g, nil
}

// ask publishes a question and calls f with each answer until window
// passes, ctx ends, or f returns false.
func (b *Bus) ask(ctx context.Context, t kaiwa.TenantID, q presenceQuestion, window time.Duration, f func(kaiwa.PresenceAnswer) bool) error {
	data, err := json.Marshal(q)
	if err != nil {
		return err
	}
	inbox := b.nc.NewRespInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return unavailable("presence", err)
	}
	defer sub.Unsubscribe()
	if err := b.nc.PublishRequest(b.subj.pq(t), inbox, data); err != nil {
		return unavailable("presence", err)
	}
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil // the window is over
		}
		var a kaiwa.PresenceAnswer
		if json.Unmarshal(m.Data, &a) == nil && !f(a) {
			return nil
		}
	}
}

// ChannelPresence asks every UA who of tenant t is online in channel ch;
// users beyond limit are counted, not listed.
func (b *Bus) ChannelPresence(ctx context.Context, t kaiwa.TenantID, ch string, limit int) (kaiwa.ChannelPresence, error) {
	seen := map[string]string{}
	err := b.ask(ctx, t, presenceQuestion{Channel: ch}, DefaultPresenceWindow, func(a kaiwa.PresenceAnswer) bool {
		for _, u := range a.Users {
			seen[u.User] = u.Name
		}
		return true
	})
	if err != nil {
		return kaiwa.ChannelPresence{}, err
	}
	out := kaiwa.ChannelPresence{Channel: ch, Count: len(seen)}
	if len(seen) <= limit {
		out.Users = make([]kaiwa.PresenceUser, 0, len(seen))
		for u, n := range seen {
			out.Users = append(out.Users, kaiwa.PresenceUser{User: u, Name: n})
		}
		slices.SortFunc(out.Users, func(a, b kaiwa.PresenceUser) int { return strings.Compare(a.User, b.User) })
	}
	return out, nil
}

// UserOnline asks every UA how many sessions user of tenant t has. It
// waits the whole window only when the user is offline (any answer says
// online), so counting every session takes the window too: sessions is
// the count of the answers that came before it returned.
func (b *Bus) UserOnline(ctx context.Context, t kaiwa.TenantID, user string, count bool) (kaiwa.UserPresence, error) {
	out := kaiwa.UserPresence{User: user}
	err := b.ask(ctx, t, presenceQuestion{User: user}, DefaultPresenceWindow, func(a kaiwa.PresenceAnswer) bool {
		out.Sessions += a.Sessions
		return count
	})
	out.Online = out.Sessions > 0
	return out, err
}
