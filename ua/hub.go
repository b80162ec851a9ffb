package ua

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/kaiwa-chat/kaiwa"
)

const hubShards = 64

// hub indexes the local sessions by channel and by user, and holds one bus
// subscription for each channel and user that has local sessions. It is
// sharded by key to keep lock contention low; fan-out reads an immutable
// snapshot of a room's sessions and takes no lock.
type hub struct {
	srv    *Server
	seed   maphash.Seed
	shards [hubShards]hubShard
}

type hubShard struct {
	mu    sync.Mutex
	rooms map[roomKey]*room
}

// roomKey names a channel room or, with user set, a user room.
type roomKey struct {
	tenant kaiwa.TenantID
	name   string
	user   bool
}

// room is the local sessions of one channel or one user, and its bus
// subscription.
type room struct {
	key     roomKey
	members map[*session]struct{} // guarded by the shard lock
	view    atomic.Pointer[[]*session]
	sub     kaiwa.Subscription
}

func newHub(s *Server) *hub {
	h := &hub{srv: s, seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].rooms = make(map[roomKey]*room)
	}
	return h
}

func (h *hub) shard(k roomKey) *hubShard {
	var mh maphash.Hash
	mh.SetSeed(h.seed)
	mh.WriteString(string(k.tenant))
	mh.WriteByte(0)
	mh.WriteString(k.name)
	return &h.shards[mh.Sum64()%hubShards]
}

// publishView refreshes the room's lock-free snapshot. Call with the shard
// lock held.
func (r *room) publishView() {
	v := make([]*session, 0, len(r.members))
	for ss := range r.members {
		v = append(v, ss)
	}
	r.view.Store(&v)
}

func (r *room) sessions() []*session {
	if v := r.view.Load(); v != nil {
		return *v
	}
	return nil
}

// enter adds ss to the room of k, subscribing on the bus when it is the
// first local session. check, when not nil, runs under the shard lock with
// the room's current size and may refuse. It reports false if ss was
// already in the room.
func (h *hub) enter(ss *session, k roomKey, check func(n int) error) (bool, int, error) {
	sh := h.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.rooms[k]
	if r != nil {
		if _, ok := r.members[ss]; ok {
			return false, len(r.members), nil
		}
	}
	n := 0
	if r != nil {
		n = len(r.members)
	}
	if check != nil {
		if err := check(n); err != nil {
			return false, n, err
		}
	}
	if r == nil {
		r = &room{key: k, members: make(map[*session]struct{})}
		var err error
		if k.user {
			r.sub, err = h.srv.cfg.Bus.SubscribeUser(k.tenant, k.name, h.userHandler(r))
		} else {
			r.sub, err = h.srv.cfg.Bus.SubscribeChannel(k.tenant, k.name, h.channelHandler(r))
		}
		if err != nil {
			return false, 0, err
		}
		sh.rooms[k] = r
	}
	r.members[ss] = struct{}{}
	r.publishView()
	return true, len(r.members), nil
}

// exit removes ss from the room of k, unsubscribing when it was the last
// local session. It reports false if ss was not in the room, and the
// room's size before removal.
func (h *hub) exit(ss *session, k roomKey) (bool, int) {
	sh := h.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.rooms[k]
	if r == nil {
		return false, 0
	}
	if _, ok := r.members[ss]; !ok {
		return false, len(r.members)
	}
	n := len(r.members)
	delete(r.members, ss)
	if len(r.members) == 0 {
		delete(sh.rooms, k)
		if err := r.sub.Unsubscribe(); err != nil {
			h.srv.log.Warn("unsubscribe", "tenant", k.tenant, "room", k.name, "err", err)
		}
	}
	r.publishView()
	return true, n
}

// channelHandler fans a channel's deliveries out to its local sessions.
func (h *hub) channelHandler(r *room) kaiwa.Handler {
	codec := h.srv.codec
	return func(d kaiwa.Delivery) {
		switch {
		case d.Message != nil:
			b := codec.EncodeMessage(d.Message)
			sessions := r.sessions()
			for _, ss := range sessions {
				ss.deliver(d.Message, b)
			}
			h.srv.met.delivered.Add(float64(len(sessions)))
		case d.Presence != nil:
			b := codec.EncodePresence(d.Presence)
			for _, ss := range r.sessions() {
				if ss.id.User != d.Presence.User {
					ss.enqueue(b)
				}
			}
		case d.Control != nil && d.Control.Kind == kaiwa.ControlChannelDeleted:
			for _, ss := range r.sessions() {
				go ss.removed(r.key.name, "channel deleted")
			}
		case d.Control != nil && d.Control.Kind == kaiwa.ControlMessageDeleted:
			b := codec.EncodeOp(outDeleted{Op: "deleted", Ch: d.Control.Channel, ID: d.Control.ID})
			for _, ss := range r.sessions() {
				ss.enqueue(b)
			}
		}
	}
}

// userHandler delivers a user's direct messages and applies live changes
// to the user's local sessions.
func (h *hub) userHandler(r *room) kaiwa.Handler {
	codec := h.srv.codec
	return func(d kaiwa.Delivery) {
		switch {
		case d.Message != nil:
			b := codec.EncodeMessage(d.Message)
			for _, ss := range r.sessions() {
				ss.deliver(d.Message, b)
			}
		case d.Control != nil:
			c := *d.Control
			for _, ss := range r.sessions() {
				go ss.control(c)
			}
		}
	}
}
