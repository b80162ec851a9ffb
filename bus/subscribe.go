package bus

import (
	"encoding/json"
	"errors"
	"hash/maphash"
	"strconv"
	"strings"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// subKind says how a subscription's messages are decoded.
type subKind uint8

const (
	subLive      subKind = iota // republished stream messages
	subEphemeral                // presence and controls
)

// subscription routes one NATS subscription's messages to a handler.
type subscription struct {
	kind subKind
	h    kaiwa.Handler
}

// group is several NATS subscriptions ended together.
type group struct {
	b    *Bus
	subs []*nats.Subscription
}

// Unsubscribe implements [kaiwa.Subscription].
func (g *group) Unsubscribe() error {
	var errs []error
	for _, s := range g.subs {
		g.b.subs.Delete(s)
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var shardSeed = maphash.MakeSeed()

func (b *Bus) subscribe(g *group, subj string, kind subKind, h kaiwa.Handler) error {
	shard := b.shards[maphash.String(shardSeed, subj)%uint64(len(b.shards))]
	s, err := b.nc.ChanSubscribe(subj, shard)
	if err != nil {
		_ = g.Unsubscribe()
		return unavailable("subscribe", err)
	}
	// Store before any message can be dispatched for it: dispatch looks the
	// subscription up and skips unknown ones, so publish order is kept.
	b.subs.Store(s, &subscription{kind: kind, h: h})
	g.subs = append(g.subs, s)
	return nil
}

// confirm waits until the server has every subscription made so far, so
// that a caller told "joined" receives everything published afterwards.
func (b *Bus) confirm(g *group) (kaiwa.Subscription, error) {
	if err := b.flush(); err != nil {
		_ = g.Unsubscribe()
		return nil, unavailable("subscribe", err)
	}
	return g, nil
}

// flush waits for a round trip to the server that began after the call:
// everything sent before it has then been processed. Concurrent callers
// share round trips (a storm of connects makes one PING per batch of
// subscriptions, not one each).
func (b *Bus) flush() error {
	done := make(chan error, 1)
	b.flushMu.Lock()
	b.flushWaiting = append(b.flushWaiting, done)
	if !b.flushing {
		b.flushing = true
		go b.flushLoop()
	}
	b.flushMu.Unlock()
	return <-done
}

// flushLoop makes round trips while callers wait for one. Each round trip
// answers the callers that were waiting when it began.
func (b *Bus) flushLoop() {
	for {
		b.flushMu.Lock()
		waiting := b.flushWaiting
		b.flushWaiting = nil
		if len(waiting) == 0 {
			b.flushing = false
			b.flushMu.Unlock()
			return
		}
		b.flushMu.Unlock()
		err := b.nc.FlushTimeout(b.cfg.Timeout)
		for _, done := range waiting {
			done <- err
		}
	}
}

// SubscribeChannel implements [kaiwa.Bus].
func (b *Bus) SubscribeChannel(t kaiwa.TenantID, ch string, h kaiwa.Handler) (kaiwa.Subscription, error) {
	g := &group{b: b}
	if err := b.subscribe(g, b.subj.live(t, ch), subLive, h); err != nil {
		return nil, err
	}
	if err := b.subscribe(g, b.subj.liveChange(t, ch), subLive, h); err != nil {
		return nil, err
	}
	if err := b.subscribe(g, b.subj.ev(t, ch), subEphemeral, h); err != nil {
		return nil, err
	}
	return b.confirm(g)
}

// SubscribeUser implements [kaiwa.Bus].
func (b *Bus) SubscribeUser(t kaiwa.TenantID, user string, h kaiwa.Handler) (kaiwa.Subscription, error) {
	g := &group{b: b}
	for _, subj := range b.subj.userLive(t, user) {
		if err := b.subscribe(g, subj, subLive, h); err != nil {
			return nil, err
		}
	}
	if err := b.subscribe(g, b.subj.user(t, user), subEphemeral, h); err != nil {
		return nil, err
	}
	return b.confirm(g)
}

// SubscribeControls delivers every tenant-wide and user-targeted live
// change of every tenant to f (not channel ones, which share subjects with
// presence). The API tier uses it to drop cached answers a change made
// through another API process has made stale.
func (b *Bus) SubscribeControls(f func(*kaiwa.Control)) (kaiwa.Subscription, error) {
	h := kaiwa.Handler{Control: f}
	g := &group{b: b}
	if err := b.subscribe(g, b.subj.allCtl(), subEphemeral, h); err != nil {
		return nil, err
	}
	if err := b.subscribe(g, b.subj.p+".*.user.*", subEphemeral, h); err != nil {
		return nil, err
	}
	return b.confirm(g)
}

// SubscribeTenants implements [kaiwa.Bus].
func (b *Bus) SubscribeTenants(f func(*kaiwa.Control)) (kaiwa.Subscription, error) {
	g := &group{b: b}
	if err := b.subscribe(g, b.subj.allCtl(), subEphemeral, kaiwa.Handler{Control: f}); err != nil {
		return nil, err
	}
	return b.confirm(g)
}

// dispatch runs handlers for one shard of subscriptions, in arrival order.
func (b *Bus) dispatch(ch chan *nats.Msg) {
	defer b.wg.Done()
	for m := range ch {
		v, ok := b.subs.Load(m.Sub)
		if !ok {
			continue
		}
		s := v.(*subscription)
		switch s.kind {
		case subLive:
			b.deliverLive(m, s.h)
		case subEphemeral:
			b.deliverEphemeral(m, s.h)
		}
	}
}

// deliverLive hands a republished stream message to h.
func (b *Bus) deliverLive(m *nats.Msg, h kaiwa.Handler) {
	if h.Message == nil {
		return
	}
	msg, err := b.decodeLive(m)
	if err != nil {
		b.log.Warn("dropping undecodable stream message", "subject", m.Subject, "err", err)
		return
	}
	h.Message(msg)
}

// deliverEphemeral hands a presence change or a live change to h, with
// the tenant of its subject: the subject is authoritative for the tenant.
func (b *Bus) deliverEphemeral(m *nats.Msg, h kaiwa.Handler) {
	var e ephemeral
	if err := json.Unmarshal(m.Data, &e); err != nil {
		b.log.Warn("dropping undecodable event", "subject", m.Subject, "err", err)
		return
	}
	t, _, ok := b.subj.parseTenant(m.Subject)
	if !ok {
		return
	}
	switch {
	case e.Presence != nil && h.Presence != nil:
		e.Presence.Tenant = t
		h.Presence(e.Presence)
	case e.Control != nil && h.Control != nil:
		e.Control.Tenant = t
		h.Control(e.Control)
	}
}

// decodeLive decodes a republished stream message: seq and prev come from
// its headers.
func (b *Bus) decodeLive(m *nats.Msg) (*kaiwa.Message, error) {
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, errors.New("bus: missing sequence header")
	}
	prev, _ := strconv.ParseUint(m.Header.Get(jetstream.LastSequenceHeader), 10, 64)
	return b.decodeMessage(m.Subject, "live.", m.Data, seq, prev)
}

// decodeMessage decodes a message stored on (or republished to) subj,
// taking tenant and channel from the subject, never from the payload.
func (b *Bus) decodeMessage(subj, kind string, data []byte, seq, prev uint64) (*kaiwa.Message, error) {
	t, rest, ok := b.subj.parseTenant(subj)
	if !ok {
		return nil, errors.New("bus: bad subject")
	}
	tail, ok := strings.CutPrefix(rest, kind)
	if !ok {
		return nil, errors.New("bus: bad subject")
	}
	ch, ok := parseMsgTail(tail)
	if !ok {
		return nil, errors.New("bus: bad subject")
	}
	msg := &kaiwa.Message{Tenant: t, Channel: ch}
	if err := decodePayload(data, msg); err != nil {
		return nil, err
	}
	msg.Seq, msg.Prev, msg.ID = seq, prev, b.MessageID(seq)
	return msg, nil
}
