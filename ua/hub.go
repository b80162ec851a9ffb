package ua

import (
	"context"
	"hash/maphash"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/stats"
	"github.com/kaiwa-chat/kaiwa/ua/internal/outbox"
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
	procs  int // goroutines one large room's fan-out may use
}

// fanChunk is the fewest sessions worth a goroutine of their own in one
// fan-out. Giving a frame to an idle session is a socket write (several
// microseconds), so a room of tens of thousands is written to from
// several goroutines at once, one part each.
const fanChunk = 1024

// fanOut calls f for every session and returns when all calls are done.
// A large room is split into parts that run in parallel; the next
// delivery starts only after every part is done, so each session still
// gets a channel's deliveries in order.
func (h *hub) fanOut(sessions []*session, f func(*session)) {
	n := len(sessions)
	parts := min(h.procs, (n+fanChunk-1)/fanChunk)
	if parts <= 1 {
		for _, ss := range sessions {
			f(ss)
		}
		return
	}
	size := (n + parts - 1) / parts
	var wg sync.WaitGroup
	for i := size; i < n; i += size {
		part := sessions[i:min(i+size, n)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ss := range part {
				f(ss)
			}
		}()
	}
	for _, ss := range sessions[:size] {
		f(ss)
	}
	wg.Wait()
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
// subscription. A channel room also remembers its latest messages, so that
// sessions resuming after a drop (a storm of reconnects) replay from
// memory instead of each asking the stream.
type room struct {
	key     roomKey
	lock    *sync.Mutex           // the shard's lock
	members map[*session]struct{} // guarded by the shard lock
	// view is the members as a lock-free snapshot for fan-outs, made when
	// one asks for it after a change (nil until then): a join or a leave
	// costs nothing per member, so a crowd joining a big room is not
	// quadratic.
	view   atomic.Pointer[[]*session]
	size   atomic.Int32 // len(members), readable without the lock
	sub    kaiwa.Subscription
	linger *time.Timer // set while the room has no members; guarded by the shard lock

	// feed keeps a channel room's deliveries gapless; a user room has one
	// per direct channel and inbox in feeds (guarded by feedsMu).
	feed    feed
	feedsMu sync.Mutex
	feeds   map[string]*feed
	deliver func(*kaiwa.Message) // the room's delivery to its sessions; set before it subscribes

	// leaving holds the leaves of users whose sessions ended, by user,
	// for the presence grace (see [hub.holdPresence]).
	leavingMu sync.Mutex
	leaving   map[string]*heldLeave

	recentMu sync.Mutex
	recent   []kaiwa.Message // contiguous by prev, oldest first
	base     uint64          // the seq before the window: it covers every message after base
	last     uint64          // the seq of the last message remembered
	changed  uint64          // the seq of the last change entry (edit, reaction) delivered
}

// remember adds a delivered message to the room's recent window. A message
// that does not follow the last one (a delivery was missed) restarts the
// window, which only ever holds an unbroken run.
func (r *room) remember(m *kaiwa.Message, keep int) {
	if keep <= 0 {
		return
	}
	r.recentMu.Lock()
	defer r.recentMu.Unlock()
	if r.last == 0 || m.Prev != r.last {
		clear(r.recent)
		r.recent = r.recent[:0]
		r.base = m.Prev
	}
	if len(r.recent) == keep {
		r.base = r.recent[0].Seq
		copy(r.recent, r.recent[1:])
		r.recent = r.recent[:keep-1]
	}
	r.recent = append(r.recent, *m)
	r.last = m.Seq
}

// forget drops a deleted message from the recent window (the window stays
// usable: replays then skip it, as the stream does).
func (r *room) forget(id string) {
	r.recentMu.Lock()
	defer r.recentMu.Unlock()
	for i := range r.recent {
		if r.recent[i].ID == id {
			r.recent = append(r.recent[:i], r.recent[i+1:]...)
			return
		}
	}
}

// since returns the messages after seq after, when the window covers them
// all (ok false otherwise).
func (r *room) since(after uint64) ([]kaiwa.Message, bool) {
	r.recentMu.Lock()
	defer r.recentMu.Unlock()
	if r.last == 0 || after < r.base || r.changed > after {
		// A change came since: the stream's replay carries it.
		return nil, false
	}
	var out []kaiwa.Message
	for _, m := range r.recent {
		if m.Seq > after {
			out = append(out, m)
		}
	}
	return out, true
}

func newHub(s *Server) *hub {
	h := &hub{srv: s, seed: maphash.MakeSeed(), procs: runtime.GOMAXPROCS(0)}
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

// membersChanged drops the room's snapshot after a change of its
// members; the next [room.sessions] makes a new one. Call with the shard
// lock held.
func (r *room) membersChanged() {
	r.view.Store(nil)
	r.size.Store(int32(len(r.members)))
}

// sessions returns a snapshot of the room's sessions, which the caller
// must not change. It takes the shard lock only to make a new snapshot
// after a change; a caller that holds the lock uses [room.sessionsLocked].
func (r *room) sessions() []*session {
	if v := r.view.Load(); v != nil {
		return *v
	}
	r.lock.Lock()
	defer r.lock.Unlock()
	return r.sessionsLocked()
}

// sessionsLocked is [room.sessions] for a caller holding the shard lock.
func (r *room) sessionsLocked() []*session {
	if v := r.view.Load(); v != nil {
		return *v
	}
	v := make([]*session, 0, len(r.members))
	for ss := range r.members {
		v = append(v, ss)
	}
	r.view.Store(&v)
	return v
}

// enter adds ss to the room of k, subscribing on the bus when it is the
// first local session. check, when not nil, runs under the shard lock with
// the room's current size and may refuse. It reports false if ss was
// already in the room. pos is the channel's position as ss enters it
// (see [feed.position]), posOK false when it is not known or k is a user
// room.
func (h *hub) enter(ss *session, k roomKey, check func(n int) error) (added bool, n int, pos uint64, posOK bool, err error) {
	sh := h.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.rooms[k]
	if r != nil {
		if _, ok := r.members[ss]; ok {
			pos, posOK = r.feed.position()
			return false, len(r.members), pos, posOK && !k.user, nil
		}
		if r.linger != nil {
			r.linger.Stop()
			r.linger = nil
		}
	}
	if r != nil {
		n = len(r.members)
	}
	if check != nil {
		if err := check(n); err != nil {
			return false, n, 0, false, err
		}
	}
	if r == nil {
		r = &room{key: k, lock: &sh.mu, members: make(map[*session]struct{})}
		if k.user {
			r.deliver = h.userDeliver(r)
			r.sub, err = h.srv.cfg.Bus.SubscribeUser(k.tenant, k.name, h.userHandler(r))
		} else {
			// Where the channel stands before live delivery starts: what
			// is stored between this and the subscription shows as a gap
			// and is repaired.
			if seq, ok := h.lastSeq(k); ok {
				r.feed.start(seq)
			}
			r.deliver = h.channelDeliver(r)
			r.sub, err = h.srv.cfg.Bus.SubscribeChannel(k.tenant, k.name, h.channelHandler(r))
		}
		if err != nil {
			return false, 0, 0, false, err
		}
		sh.rooms[k] = r
	}
	if !k.user {
		pos, posOK = r.feed.position()
	}
	r.members[ss] = struct{}{}
	r.membersChanged()
	return true, len(r.members), pos, posOK, nil
}

// lastSeq returns the seq of channel k's newest message in the stream (0
// when there is none); ok is false when the stream does not answer in
// time (the first live message is then taken as it comes).
func (h *hub) lastSeq(k roomKey) (seq uint64, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	seq, err := h.srv.cfg.Bus.LastSeq(ctx, k.tenant, k.name)
	if err != nil {
		h.srv.log.Warn("last seq of a new room", "tenant", k.tenant, "ch", k.name, "err", err)
		return 0, false
	}
	return seq, true
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
	r.membersChanged()
	if len(r.members) == 0 {
		if linger := h.srv.cfg.RoomLinger; linger > 0 && !k.user {
			// Keep the subscription, and the recent messages, a while:
			// after a storm of drops the members come back.
			r.linger = time.AfterFunc(linger, func() { h.close(k, r) })
		} else {
			h.closeLocked(sh, k, r)
		}
	}
	return true, n
}

// close ends a room that is still empty after lingering.
func (h *hub) close(k roomKey, r *room) {
	sh := h.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.rooms[k] == r && len(r.members) == 0 {
		h.closeLocked(sh, k, r)
	}
}

func (h *hub) closeLocked(sh *hubShard, k roomKey, r *room) {
	delete(sh.rooms, k)
	r.feed.close()
	r.feedsMu.Lock()
	for _, f := range r.feeds {
		f.close()
	}
	r.feedsMu.Unlock()
	if err := r.sub.Unsubscribe(); err != nil {
		h.srv.log.Warn("unsubscribe", "tenant", k.tenant, "room", k.name, "err", err)
	}
}

// recent returns the messages of a channel after seq after from the room's
// memory, when it covers them.
func (h *hub) recent(t kaiwa.TenantID, ch string, after uint64) ([]kaiwa.Message, bool) {
	k := roomKey{tenant: t, name: ch}
	sh := h.shard(k)
	sh.mu.Lock()
	r := sh.rooms[k]
	sh.mu.Unlock()
	if r == nil {
		return nil, false
	}
	return r.since(after)
}

// userFeed returns the feed of one of a user room's direct channels.
func (r *room) userFeed(ch string) *feed {
	r.feedsMu.Lock()
	defer r.feedsMu.Unlock()
	f := r.feeds[ch]
	if f == nil {
		if r.feeds == nil {
			r.feeds = make(map[string]*feed)
		}
		f = new(feed)
		r.feeds[ch] = f
	}
	return f
}

// admit passes a live message through f: delivered now by deliver, held
// behind a repair, or dropped as delivered already. A gap starts a repair
// on a goroutine of its own, which delivers with deliver too.
func (h *hub) admit(f *feed, r *room, m *kaiwa.Message, deliver func(*kaiwa.Message)) {
	now, repair := f.admit(m)
	if now {
		deliver(m)
	}
	if repair {
		h.srv.met.gaps.Inc()
		h.srv.log.Info("gap in live delivery: repairing from the stream", "tenant", r.key.tenant, "ch", m.Channel, "seq", m.Seq, "prev", m.Prev)
		h.repair(f, r.key.tenant, m.Channel, deliver)
	}
}

// recheck makes every feed read what it may have missed while the bus
// connection was down: a channel that stays quiet afterwards shows no gap
// by itself. The feeds are read one after another, so a server with many
// rooms does not ask the stream for all of them at once.
func (h *hub) recheck() {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		rooms := make([]*room, 0, len(sh.rooms))
		for _, r := range sh.rooms {
			rooms = append(rooms, r)
		}
		sh.mu.Unlock()
		for _, r := range rooms {
			if r.deliver == nil {
				continue
			}
			if !r.key.user {
				h.recheckFeed(&r.feed, r.key.tenant, r.key.name, r.deliver)
				continue
			}
			r.feedsMu.Lock()
			feeds := maps.Clone(r.feeds)
			r.feedsMu.Unlock()
			for ch, f := range feeds {
				h.recheckFeed(f, r.key.tenant, ch, r.deliver)
			}
		}
	}
}

// recheckFeed reads what f may have missed, on this goroutine.
func (h *hub) recheckFeed(f *feed, t kaiwa.TenantID, ch string, deliver func(*kaiwa.Message)) {
	if f.recheck() {
		h.repairer(t, ch, deliver).run(f)
	}
}

// repair starts f's repair on a goroutine of its own.
func (h *hub) repair(f *feed, t kaiwa.TenantID, ch string, deliver func(*kaiwa.Message)) {
	go h.repairer(t, ch, deliver).run(f)
}

// repairer reads channel ch of tenant t from the stream for a feed.
func (h *hub) repairer(t kaiwa.TenantID, ch string, deliver func(*kaiwa.Message)) repairer {
	log := h.srv.log.With("tenant", t, "ch", ch)
	return repairer{
		read: func(ctx context.Context, after, before uint64, max int) ([]kaiwa.Message, bool, error) {
			return h.srv.cfg.Bus.Missed(ctx, t, ch, after, before, max)
		},
		deliver:  deliver,
		batch:    min(256, h.srv.cfg.RepairMax),
		most:     h.srv.cfg.RepairMax,
		backoff:  50 * time.Millisecond,
		replayed: func(n int) { h.srv.met.repaired.Add(float64(n)) },
		failed:   func(err error) { log.Warn("gap repair: reading the stream", "err", err) },
		skipped: func() {
			h.srv.met.unrepaired.Inc()
			log.Warn("gap repair: gap too large, the rest skipped", "max", h.srv.cfg.RepairMax)
		},
	}
}

// channelDeliver returns a channel room's delivery of a message to its
// local sessions: encoded once, the same bytes to each.
func (h *hub) channelDeliver(r *room) func(*kaiwa.Message) {
	codec := h.srv.codec
	keep := h.srv.cfg.RecentPerChannel
	return func(m *kaiwa.Message) {
		r.remember(m, keep)
		b := outbox.Prepare(codec, codec.EncodeMessage(m))
		sessions := r.sessions()
		from := m.From
		h.fanOut(sessions, func(ss *session) {
			if !ss.hides(from) {
				ss.deliver(m, b)
			}
		})
		h.srv.met.delivered.WithLabelValues(string(r.key.tenant)).Add(float64(len(sessions)))
		h.srv.cfg.Stats.Add(r.key.tenant, stats.Deliveries, len(sessions))
	}
}

// channelHandler fans a channel's deliveries out to its local sessions.
func (h *hub) channelHandler(r *room) kaiwa.Handler {
	codec := h.srv.codec
	return kaiwa.Handler{
		Message: func(m *kaiwa.Message) {
			h.srv.met.busMsgs.Inc()
			if m.Kind != "" {
				h.deliverChange(r, m)
				return
			}
			h.admit(&r.feed, r, m, r.deliver)
		},
		Presence: func(p *kaiwa.Presence) {
			if !h.holdPresence(r, p) {
				h.tellPresence(r, p)
			}
		},
		Control: func(c *kaiwa.Control) {
			switch c.Kind {
			case kaiwa.ControlChannelDeleted:
				for _, ss := range r.sessions() {
					go func() {
						ss.setMember(r.key.name, false)
						ss.removed(r.key.name, "channel deleted")
					}()
				}
			case kaiwa.ControlChannelClosed:
				for _, ss := range r.sessions() {
					if !ss.member(r.key.name) {
						go ss.removed(r.key.name, "channel closed")
					}
				}
			case kaiwa.ControlMessageDeleted:
				r.forget(c.ID)
				b := outbox.Prepare(codec, codec.EncodeOp(outDeleted{Op: "deleted", Ch: c.Channel, ID: c.ID}))
				h.fanOut(r.sessions(), func(ss *session) { ss.enqueue(b) })
			}
		},
	}
}

// tellPresence tells a channel room's local sessions, but the user's own,
// of presence event p.
func (h *hub) tellPresence(r *room, p *kaiwa.Presence) {
	if r.size.Load() == 0 {
		return
	}
	sessions := r.sessions()
	if len(sessions) == 0 || len(sessions) > sessions[0].settings().PresenceLimit {
		// Announced while the room was small, delivered once it had
		// grown: a large room gets no presence either way.
		return
	}
	codec := h.srv.codec
	b := outbox.Prepare(codec, codec.EncodePresence(p))
	user := p.User
	h.fanOut(sessions, func(ss *session) {
		if ss.id.User != user && !ss.hides(user) {
			ss.enqueue(b)
		}
	})
}

// heldLeave is a leave a channel room holds for the presence grace.
type heldLeave struct {
	p     kaiwa.Presence
	timer *time.Timer
}

// presenceStormMin is the fewest leaves a room holds that make its drops a
// storm ([Config.PresenceStormGrace]).
const presenceStormMin = 5

// stormy reports whether a room that holds held leaves and has sessions
// local sessions is in a storm of drops: the held leaves are a tenth of
// the two together, and at least presenceStormMin.
func stormy(held, sessions int) bool {
	return held >= max(presenceStormMin, (held+sessions)/10)
}

// holdPresence applies the presence grace ([Config.PresenceGrace]) to
// presence event p of room r, and reports whether it took p: a leave
// because the user's session ended is held, and told when the grace ends;
// the user's join before then cancels it and is dropped too, so that to
// the others the user never left. A room already holding many leaves
// ([stormy]) holds the next ones for the storm grace
// ([Config.PresenceStormGrace]). Every UA decides this for its own
// sessions from the same events, so a user who reconnects to another UA is
// held and dropped the same way everywhere; a UA that did tell a leave
// tells the join that follows it, so its sessions never see one without
// the other.
func (h *hub) holdPresence(r *room, p *kaiwa.Presence) bool {
	grace := h.srv.cfg.PresenceGrace
	if grace <= 0 {
		return false
	}
	r.leavingMu.Lock()
	defer r.leavingMu.Unlock()
	switch {
	case p.Event == "leave" && p.Gone:
		if old := r.leaving[p.User]; old != nil {
			old.timer.Stop()
			delete(r.leaving, p.User)
		}
		if r.leaving == nil {
			r.leaving = map[string]*heldLeave{}
		}
		if stormy(len(r.leaving), int(r.size.Load())) {
			grace = h.srv.cfg.PresenceStormGrace
			h.srv.met.presenceStormHeld.Inc()
		}
		hl := &heldLeave{p: *p}
		hl.timer = time.AfterFunc(grace, func() {
			r.leavingMu.Lock()
			mine := r.leaving[hl.p.User] == hl
			if mine {
				delete(r.leaving, hl.p.User)
			}
			r.leavingMu.Unlock()
			if mine {
				h.tellPresence(r, &hl.p)
			}
		})
		r.leaving[p.User] = hl
		return true
	case p.Event == "join":
		hl := r.leaving[p.User]
		if hl == nil {
			return false
		}
		hl.timer.Stop()
		delete(r.leaving, p.User)
		return true
	}
	return false
}

// userDeliver returns a user room's delivery of a direct or inbox message
// to the user's local sessions.
func (h *hub) userDeliver(r *room) func(*kaiwa.Message) {
	codec := h.srv.codec
	return func(m *kaiwa.Message) {
		b := outbox.Prepare(codec, codec.EncodeMessage(m))
		for _, ss := range r.sessions() {
			if !ss.hides(m.From) {
				ss.deliver(m, b)
			}
		}
	}
}

// userHandler delivers a user's direct messages and typing in them, and
// applies live changes to the user's local sessions.
func (h *hub) userHandler(r *room) kaiwa.Handler {
	codec := h.srv.codec
	return kaiwa.Handler{
		Message: func(m *kaiwa.Message) {
			h.srv.met.busMsgs.Inc()
			if m.Kind != "" {
				r.deliver(m) // a change of a direct message: no feed of its own
				return
			}
			h.admit(r.userFeed(m.Channel), r, m, r.deliver)
		},
		Presence: func(p *kaiwa.Presence) {
			// The other user of a direct channel is typing.
			if p.Event != kaiwa.PresenceTyping || !kaiwa.IsDM(p.Channel) {
				return
			}
			b := outbox.Prepare(codec, codec.EncodePresence(p))
			for _, ss := range r.sessions() {
				if ss.id.User != p.User && !ss.hides(p.User) {
					ss.enqueue(b)
				}
			}
		},
		Control: func(c *kaiwa.Control) {
			for _, ss := range r.sessions() {
				go ss.control(*c)
			}
		},
	}
}
