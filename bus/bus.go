package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/stats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures a [Bus]. Zero fields take the defaults noted.
type Config struct {
	// URL of the NATS server(s), comma separated. Default nats://127.0.0.1:4222.
	URL string
	// Name is the connection name shown by the NATS server.
	Name string
	// Prefix starts every subject. Default "kaiwa".
	Prefix string
	// Stream is the JetStream stream of chat and system messages. Default "KAIWA_MSGS".
	Stream string
	// EventBatchStream buffers the event log: each message holds the
	// events a process recorded for one tenant within a moment. Default
	// "KAIWA_EVENT_BATCHES".
	EventBatchStream string
	// EventStream is the event log's buffer of single events, one per
	// message, as the release before recorded them: still drained, for the
	// roll from it (see events.go). Default "KAIWA_EVENTS".
	EventStream string
	// NodesBucket is the key-value bucket of the processes' heartbeats
	// ([Bus.Heartbeat], [Bus.Nodes]). Default "KAIWA_NODES".
	NodesBucket string
	// HistoryMaxAge is how long the stream keeps messages, for history,
	// resume and the log writer's catch-up. Default 72h.
	HistoryMaxAge time.Duration
	// HistoryMaxBytes bounds the stream's size. Default unlimited (-1).
	HistoryMaxBytes int64
	// HistoryMaxMsgs bounds the stream's message count. Default unlimited (-1).
	HistoryMaxMsgs int64
	// DuplicateWindow is how long a client message id (cid) de-duplicates
	// resends. Default 2m.
	DuplicateWindow time.Duration
	// Replicas of the streams (1 for a single server, 3 in a cluster).
	Replicas int
	// Timeout bounds publish acknowledgements and directory requests. Default 3s.
	Timeout time.Duration
	// StatsWait is how long a stats request gathers the processes'
	// answers. Default [DefaultStatsWait].
	StatsWait time.Duration
	// Dispatchers is the number of goroutines running subscription
	// handlers. Default 4.
	Dispatchers int
	// DispatchQueue is each dispatcher's buffer, in messages. Default 8192.
	DispatchQueue int
	// Logger receives the bus's own errors. Default slog.Default().
	Logger *slog.Logger
	// BindOnly uses the streams as they are, creating them only when
	// missing, instead of applying this config's limits to them: for
	// short-lived tools that must not change what the servers set up.
	BindOnly bool
}

func (c *Config) setDefaults() {
	if c.URL == "" {
		c.URL = nats.DefaultURL
	}
	if c.Prefix == "" {
		c.Prefix = "kaiwa"
	}
	if c.Stream == "" {
		c.Stream = "KAIWA_MSGS"
	}
	if c.EventStream == "" {
		c.EventStream = "KAIWA_EVENTS"
	}
	if c.EventBatchStream == "" {
		c.EventBatchStream = "KAIWA_EVENT_BATCHES"
	}
	if c.NodesBucket == "" {
		c.NodesBucket = "KAIWA_NODES"
	}
	if c.HistoryMaxAge <= 0 {
		c.HistoryMaxAge = 72 * time.Hour
	}
	if c.HistoryMaxBytes == 0 {
		c.HistoryMaxBytes = -1
	}
	if c.HistoryMaxMsgs == 0 {
		c.HistoryMaxMsgs = -1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.StatsWait <= 0 {
		c.StatsWait = DefaultStatsWait
	}
	if c.Dispatchers <= 0 {
		c.Dispatchers = 4
	}
	if c.DispatchQueue <= 0 {
		c.DispatchQueue = 8192
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Bus is one process's connection to NATS. It implements [kaiwa.Bus], and
// [kaiwa.Recorder] with the event stream.
type Bus struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	subj   subjects
	epoch  string
	// evEpoch and evbEpoch are the event stream's and the event batch
	// stream's creation times, base 36, for event ids.
	evEpoch, evbEpoch string
	log               *slog.Logger

	shards []chan *nats.Msg
	subs   sync.Map // *nats.Subscription → *subscription
	wg     sync.WaitGroup

	events        eventBatcher // Record's pending batches
	droppedEvents atomic.Uint64
	closeOnce     sync.Once

	flushMu      sync.Mutex
	flushWaiting []chan error
	flushing     bool

	watchMu  sync.Mutex
	onReconn []func() // guarded by watchMu

	sessionQ sessionQueue // the UA's session lookups, in batches

	met  *metrics    // see metrics.go
	book *stats.Book // the process's figures per tenant, for stats requests
}

var (
	_ kaiwa.Bus      = (*Bus)(nil)
	_ kaiwa.Recorder = (*Bus)(nil)
)

// ErrClosed is returned by a closed [Bus].
var ErrClosed = errors.New("bus: closed")

// Connect dials NATS, makes sure the streams exist with the configured
// limits, and starts the dispatchers.
func Connect(ctx context.Context, cfg Config) (*Bus, error) {
	cfg.setDefaults()
	b := &Bus{cfg: cfg, subj: subjects{p: cfg.Prefix}, log: cfg.Logger, met: newMetrics(), book: stats.NewBook()}
	b.events.b = b
	nc, err := nats.Connect(cfg.URL,
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			b.log.Warn("nats async error", "subject", subj, "err", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
			b.reconnected()
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	b.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.js = js
	if err := b.ensureStreams(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	b.shards = make([]chan *nats.Msg, cfg.Dispatchers)
	for i := range b.shards {
		ch := make(chan *nats.Msg, cfg.DispatchQueue)
		b.shards[i] = ch
		b.wg.Add(1)
		go b.dispatch(ch)
	}
	return b, nil
}

func (b *Bus) ensureStreams(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	apply := b.js.CreateOrUpdateStream
	if b.cfg.BindOnly {
		apply = func(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
			st, err := b.js.Stream(ctx, cfg.Name)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return b.js.CreateStream(ctx, cfg)
			}
			return st, err
		}
	}
	st, err := apply(ctx, jetstream.StreamConfig{
		Name:        b.cfg.Stream,
		Description: "Kaiwa chat and system messages: sequence numbers, history, and the message log's buffer",
		Subjects:    []string{b.subj.allMsg()},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      b.cfg.HistoryMaxAge,
		MaxBytes:    b.cfg.HistoryMaxBytes,
		MaxMsgs:     b.cfg.HistoryMaxMsgs,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		Duplicates:  b.cfg.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
		RePublish:   &jetstream.RePublish{Source: b.subj.allMsg(), Destination: b.subj.allLiveDst()},
		AllowDirect: true,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", b.cfg.Stream, err)
	}
	b.stream = st
	b.epoch = strconv.FormatInt(st.CachedInfo().Created.Unix(), 36)
	for _, es := range []struct {
		name, subject, description string
		epoch                      *string
	}{
		// The release before's description: the two releases apply the
		// same config during a roll.
		{b.cfg.EventStream, b.subj.allEvlog(), "Kaiwa event log buffer, drained by the log writer", &b.evEpoch},
		{b.cfg.EventBatchStream, b.subj.allEvb(), "Kaiwa event log buffer, a tenant's events of a moment per message, drained by the log writer", &b.evbEpoch},
	} {
		st, err := apply(ctx, jetstream.StreamConfig{
			Name:        es.name,
			Description: es.description,
			Subjects:    []string{es.subject},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      b.cfg.HistoryMaxAge,
			Storage:     jetstream.FileStorage,
			Replicas:    b.cfg.Replicas,
			Discard:     jetstream.DiscardOld,
		})
		if err != nil {
			return fmt.Errorf("ensure stream %s: %w", es.name, err)
		}
		*es.epoch = strconv.FormatInt(st.CachedInfo().Created.Unix(), 36)
	}
	return nil
}

// OnReconnect implements [kaiwa.Bus]: f runs, on a goroutine of its own,
// each time the connection comes back after a loss, once the server has
// the restored subscriptions.
func (b *Bus) OnReconnect(f func()) {
	b.watchMu.Lock()
	defer b.watchMu.Unlock()
	b.onReconn = append(b.onReconn, f)
}

// reconnected runs the OnReconnect callbacks once the restored
// subscriptions are confirmed (what is published after that is delivered
// live; what was published before can be read from the stream).
func (b *Bus) reconnected() {
	b.watchMu.Lock()
	fs := slices.Clone(b.onReconn)
	b.watchMu.Unlock()
	if len(fs) == 0 {
		return
	}
	go func() {
		if err := b.nc.FlushTimeout(b.cfg.Timeout); err != nil {
			b.log.Warn("confirm restored subscriptions", "err", err)
		}
		for _, f := range fs {
			f()
		}
	}()
}

// Conn returns the underlying NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Ping reports whether the bus is connected, for readiness checks.
func (b *Bus) Ping(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return kaiwa.Errorf(kaiwa.CodeUnavailable, "not connected to NATS")
	}
	return b.nc.FlushWithContext(ctx)
}

// Close publishes the events still pending, closes the connection and
// stops the dispatchers.
func (b *Bus) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.events.stop()
		b.nc.Close()
		for _, ch := range b.shards {
			close(ch)
		}
		b.wg.Wait()
	})
	return err
}

// MessageID returns the message id of a stream sequence.
func (b *Bus) MessageID(seq uint64) string {
	return b.epoch + "-" + strconv.FormatUint(seq, 10)
}

// MessageSeq returns the stream sequence of a message id of this stream.
func (b *Bus) MessageSeq(id string) (uint64, bool) {
	ep, s, ok := strings.Cut(id, "-")
	if !ok || ep != b.epoch {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	return seq, err == nil && seq > 0
}

func (b *Bus) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.cfg.Timeout)
}

// unavailable wraps a NATS failure as a [kaiwa.CodeUnavailable] error,
// keeping the cause for the log.
func unavailable(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, kaiwa.Errorf(kaiwa.CodeUnavailable, "message bus unavailable, try again"), err)
}

// Publish implements [kaiwa.Publisher]: it stores m in the stream.
//
// Every message carries a de-duplication id (Nats-Msg-Id): the sender's
// CID, or a fresh random one set in m.CID when it has none. A publish
// whose acknowledgement does not come (the connection dropped, NATS is
// restarting, JetStream is not ready yet) is retried with the same id
// until ctx ends, or for the bus's Timeout when ctx has no deadline, so a
// retry never stores a message twice. When no attempt was acknowledged
// the error is [kaiwa.CodeUnavailable] and the outcome is unknown: the
// message may have been stored. The returned message then still holds the
// CID, and a resend with it within the duplicate window cannot duplicate
// the message.
func (b *Bus) Publish(ctx context.Context, m kaiwa.Message) (kaiwa.Message, error) {
	m, msg, err := b.prepare(m)
	if err != nil {
		return m, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = b.timeout(ctx)
		defer cancel()
	}
	wait := 25 * time.Millisecond
	for {
		ack, err := b.js.PublishMsg(ctx, msg)
		if err == nil {
			return b.stored(m, ack), nil
		}
		if ctx.Err() != nil || errors.Is(err, nats.ErrConnectionClosed) {
			return m, notStored(m, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 400*time.Millisecond)
	}
}

// PublishBatch implements [kaiwa.BatchPublisher]: it sends every message
// of msgs before waiting for any acknowledgement, then waits for them all,
// so that the batch shares its round trips to NATS. A message whose
// publish failed is published again as [Bus.Publish] does, which its
// de-duplication id makes safe. out[i] and errs[i] are the outcome of
// msgs[i].
func (b *Bus) PublishBatch(ctx context.Context, msgs []kaiwa.Message) (out []kaiwa.Message, errs []error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = b.timeout(ctx)
		defer cancel()
	}
	out = make([]kaiwa.Message, len(msgs))
	errs = make([]error, len(msgs))
	acks := make([]jetstream.PubAckFuture, len(msgs))
	for i := range msgs {
		var msg *nats.Msg
		if out[i], msg, errs[i] = b.prepare(msgs[i]); errs[i] != nil {
			continue
		}
		// A failed send is published again below.
		acks[i], _ = b.js.PublishMsgAsync(msg)
	}
	for i, f := range acks {
		if errs[i] != nil {
			continue
		}
		if f != nil {
			select {
			case ack := <-f.Ok():
				out[i] = b.stored(out[i], ack)
				continue
			case <-f.Err():
			case <-ctx.Done():
			}
		}
		out[i], errs[i] = b.Publish(ctx, out[i])
	}
	return out, errs
}

// prepare checks m and returns it as it is published, with its NATS
// message: TS and CID set when m has none, ID, Seq and Prev cleared.
func (b *Bus) prepare(m kaiwa.Message) (kaiwa.Message, *nats.Msg, error) {
	if !kaiwa.ValidID(string(m.Tenant)) || kaiwa.CheckChannel(m.Channel) != nil {
		return m, nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "invalid tenant or channel")
	}
	if m.TS == 0 {
		m.TS = kaiwa.Now()
	}
	if m.CID == "" {
		m.CID = kaiwa.NewCID()
	}
	m.ID, m.Seq, m.Prev = "", 0, 0
	msg := nats.NewMsg(b.subj.stored(&m))
	msg.Data = appendPayload(make([]byte, 0, 160+len(m.Text)+len(m.Data)), &m)
	msg.Header.Set(jetstream.MsgIDHeader, string(m.Tenant)+"/"+m.From+"/"+m.CID)
	return m, msg, nil
}

// stored returns m as the stream acknowledged it, and counts it unless the
// stream had it already.
func (b *Bus) stored(m kaiwa.Message, ack *jetstream.PubAck) kaiwa.Message {
	m.Seq = ack.Sequence
	m.ID = b.MessageID(ack.Sequence)
	if !ack.Duplicate {
		b.published(m.Tenant)
	}
	return m
}

// notStored is the error of a publish whose acknowledgement did not come.
func notStored(m kaiwa.Message, err error) error {
	return fmt.Errorf("publish message: %w: %w", kaiwa.Errorf(kaiwa.CodeUnavailable,
		"message bus unavailable: the message may have been stored; resend it with cid %q to be sure, which cannot duplicate it", m.CID), err)
}

// DeleteMessage implements [kaiwa.Publisher]: it removes the message from
// the stream after checking that it belongs to the tenant's channel.
func (b *Bus) DeleteMessage(ctx context.Context, t kaiwa.TenantID, ch, id string) error {
	seq, ok := b.MessageSeq(id)
	if !ok {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no such message")
	}
	ctx, cancel := b.timeout(ctx)
	defer cancel()
	raw, err := b.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no such message")
	}
	if err != nil {
		return unavailable("get message", err)
	}
	if raw.Subject != b.subj.msg(t, ch) {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no such message")
	}
	if err := b.stream.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return kaiwa.Errorf(kaiwa.CodeNotFound, "no such message")
		}
		return unavailable("delete message", err)
	}
	return nil
}

// ephemeral is the body of every core-NATS delivery: exactly one field set.
type ephemeral struct {
	Presence *kaiwa.Presence `json:"presence,omitempty"`
	Control  *kaiwa.Control  `json:"control,omitempty"`
}

// PublishPresence implements [kaiwa.Bus]. A direct channel has no
// subject of its own for presence: its typing goes to the other user's.
func (b *Bus) PublishPresence(_ context.Context, p kaiwa.Presence) error {
	data, err := json.Marshal(ephemeral{Presence: &p})
	if err != nil {
		return fmt.Errorf("encode presence: %w", err)
	}
	subj := b.subj.ev(p.Tenant, p.Channel)
	if one, other, ok := kaiwa.ParseDM(p.Channel); ok {
		if one == p.User {
			one = other
		}
		subj = b.subj.user(p.Tenant, one)
	}
	if err := b.nc.Publish(subj, data); err != nil {
		return unavailable("publish presence", err)
	}
	return nil
}

// PublishControl implements [kaiwa.Publisher]: user-targeted kinds go to the
// user's subject, channel deletion to the channel's, the rest to the
// tenant's. It waits until the server has the message, so a caller that
// returns afterwards knows every UA will see it.
func (b *Bus) PublishControl(ctx context.Context, c kaiwa.Control) error {
	var subjs []string
	switch c.Kind {
	case kaiwa.ControlTokensRevoked, kaiwa.ControlBan, kaiwa.ControlMute, kaiwa.ControlUnmute, kaiwa.ControlUnban:
		// The tenant's subject too: UAs that admit signed tokens keep the
		// tenant's revocations and sanctions (see package signing).
		subjs = []string{b.subj.user(c.Tenant, c.User), b.subj.ctl(c.Tenant)}
	case kaiwa.ControlMemberAdded, kaiwa.ControlMemberRemoved, kaiwa.ControlKick:
		subjs = []string{b.subj.user(c.Tenant, c.User)}
	case kaiwa.ControlChannelDeleted, kaiwa.ControlChannelClosed:
		subjs = []string{b.subj.ev(c.Tenant, c.Channel)}
	case kaiwa.ControlRead:
		subjs = []string{b.subj.user(c.Tenant, c.User)}
	case kaiwa.ControlBlock, kaiwa.ControlUnblock:
		// The blocker's sessions cull; the other's refuse direct messages.
		subjs = []string{b.subj.user(c.Tenant, c.User), b.subj.user(c.Tenant, c.Other)}
	case kaiwa.ControlMessageDeleted:
		// Direct and inbox messages reach sessions through their users'
		// subjects; channel messages through the channel's.
		if a, bu, ok := kaiwa.ParseDM(c.Channel); ok {
			subjs = []string{b.subj.user(c.Tenant, a), b.subj.user(c.Tenant, bu)}
		} else if u, ok := kaiwa.InboxUser(c.Channel); ok {
			subjs = []string{b.subj.user(c.Tenant, u)}
		} else {
			subjs = []string{b.subj.ev(c.Tenant, c.Channel)}
		}
	default:
		subjs = []string{b.subj.ctl(c.Tenant)}
	}
	data, err := json.Marshal(ephemeral{Control: &c})
	if err != nil {
		return fmt.Errorf("encode control: %w", err)
	}
	for _, subj := range subjs {
		if err := b.nc.Publish(subj, data); err != nil {
			return unavailable("publish control", err)
		}
	}
	ctx, cancel := b.timeout(ctx)
	defer cancel()
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return unavailable("flush control", err)
	}
	return nil
}
