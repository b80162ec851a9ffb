package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/nats-io/nats.go"
)

// dirOp is a directory operation: the last token of its subject
// (P.T.dir.OP). Its type parameters are the operation's request and reply
// types, so that [call] and [serve] cannot pair an operation with the
// wrong ones.
type dirOp[Req, Resp any] string

// The directory's operations. Adding one takes a request type, a reply
// type, a serve line in [Bus.ServeDirectory] and a client method.
const (
	opToken     dirOp[tokenRequest, tokenReply]         = "token"
	opSession   dirOp[sessionRequest, sessionReply]     = "session"
	opSessions  dirOp[sessionsRequest, sessionsReply]   = "sessions"
	opSettings  dirOp[settingsRequest, settingsReply]   = "settings"
	opChannel   dirOp[channelRequest, channelReply]     = "channel"
	opMember    dirOp[memberRequest, memberReply]       = "member"
	opChannels  dirOp[channelsRequest, channelsReply]   = "channels"
	opNG        dirOp[ngRequest, ngReply]               = "ng"
	opSanctions dirOp[sanctionsRequest, sanctionsReply] = "sanctions"
	opSanction  dirOp[sanctionRequest, doneReply]       = "sanction"
	opLift      dirOp[liftRequest, doneReply]           = "lift"
	opKick      dirOp[kickRequest, doneReply]           = "kick"
)

// The requests and replies of the directory's operations. The tenant is
// the subject's, never a member. Where an operation was served before the
// directory had one type per operation, its members keep their names, so
// that UAs and API processes of both releases understand each other during
// a rolling upgrade. No reply has an "error" member: that is a refusal's
// ([dirRefusal]).
type (
	// tokenRequest asks who a user token's bearer is.
	tokenRequest struct {
		Token string `json:"token"`
	}
	// tokenReply is the token's identity.
	tokenReply struct {
		Identity kaiwa.Identity `json:"identity"`
	}

	// sessionRequest asks everything a new session needs of its token.
	sessionRequest struct {
		Token string `json:"token"`
		// Player asks for the user's own state too (blocks, and the
		// unread counts of the member channels), in the same round trip.
		Player bool `json:"player,omitempty"`
	}
	// sessionReply is the token's identity, the user's sanctions in force
	// and the channels the user is a member of.
	sessionReply struct {
		Identity  kaiwa.Identity   `json:"identity"`
		Sanctions []kaiwa.Sanction `json:"sanctions,omitempty"`
		Channels  []string         `json:"channels,omitempty"`
		// Player is the user's own state for the member channels, when
		// asked for and the directory could answer it.
		Player *kaiwa.PlayerStart `json:"player,omitempty"`
		// Session is always true: UAs of the earlier release check it.
		Session bool `json:"session"`
	}

	// settingsRequest asks for the tenant's settings.
	settingsRequest struct{}
	// settingsReply is the tenant's settings.
	settingsReply struct {
		Settings kaiwa.Settings `json:"settings"`
	}

	// channelRequest asks for a channel.
	channelRequest struct {
		Channel string `json:"ch"`
	}
	// channelReply is the channel.
	channelReply struct {
		Channel kaiwa.Channel `json:"channel"`
	}

	// memberRequest asks whether a user is a member of a channel.
	memberRequest struct {
		Channel string `json:"ch"`
		User    string `json:"user"`
	}
	// memberReply says whether the user is a member.
	memberReply struct {
		Member bool `json:"member"`
	}

	// channelsRequest asks for the channels a user is a member of.
	channelsRequest struct {
		User string `json:"user"`
	}
	// channelsReply is the user's member channels.
	channelsReply struct {
		Channels []string `json:"channels"`
	}

	// ngRequest asks for the tenant's NG list.
	ngRequest struct{}
	// ngReply is the tenant's NG list.
	ngReply struct {
		List kaiwa.NGList `json:"ng"`
	}

	// sanctionsRequest asks for a user's sanctions in force.
	sanctionsRequest struct {
		User string `json:"user"`
	}
	// sanctionsReply is the user's sanctions in force.
	sanctionsReply struct {
		Sanctions []kaiwa.Sanction `json:"sanctions"`
	}

	// sanctionRequest bans or mutes a user ([kaiwa.Moderation.Sanction]).
	sanctionRequest struct {
		Sanction kaiwa.Sanction `json:"sanction"`
	}
	// liftRequest ends a user's ban or mute ([kaiwa.Moderation.Lift]).
	liftRequest struct {
		User string             `json:"user"`
		Kind kaiwa.SanctionKind `json:"kind"`
	}
	// kickRequest closes a user's sessions ([kaiwa.Moderation.Kick]).
	kickRequest struct {
		User   string `json:"user"`
		Reason string `json:"reason,omitempty"`
	}
	// doneReply says a change was made.
	doneReply struct{}
)

// dirRefusal is the reply to a refused request: its [kaiwa.Error].
type dirRefusal struct {
	Error *wireError `json:"error,omitempty"`
}

// wireError is a [kaiwa.Error] on the wire.
type wireError struct {
	Code    kaiwa.Code `json:"code"`
	Message string     `json:"message"`
}

// refusalPrefix is how a refusal's JSON begins.
var refusalPrefix = []byte(`{"error":`)

// refusal returns the reply refusing a request with err. An internal error
// reaches the UA as unavailable, without its detail.
func refusal(err error) dirRefusal {
	code := kaiwa.ErrorCode(err)
	if code == kaiwa.CodeInternal {
		return dirRefusal{Error: &wireError{Code: kaiwa.CodeUnavailable, Message: "directory unavailable"}}
	}
	return dirRefusal{Error: &wireError{Code: code, Message: kaiwa.ErrorMessage(err)}}
}

// call asks the API tier operation op for tenant t with req and returns
// the reply. A refusal is returned as the [kaiwa.Error] the server
// answered; when no server answers in time the error is
// [kaiwa.CodeUnavailable].
func call[Req, Resp any](ctx context.Context, b *Bus, t kaiwa.TenantID, op dirOp[Req, Resp], req Req) (Resp, error) {
	var rep Resp
	data, err := json.Marshal(req)
	if err != nil {
		return rep, fmt.Errorf("encode directory %s request: %w", op, err)
	}
	ctx, cancel := b.timeout(ctx)
	defer cancel()
	m, err := b.nc.RequestWithContext(ctx, b.subj.dir(t, string(op)), data)
	if errors.Is(err, nats.ErrNoResponders) {
		return rep, errNoAPI
	}
	if err != nil {
		return rep, unavailable("directory "+string(op)+" request", err)
	}
	// A refusal is {"error":...} as respond writes it, and no reply starts
	// so: the reply is decoded once.
	if bytes.HasPrefix(m.Data, refusalPrefix) {
		var refused dirRefusal
		err := json.Unmarshal(m.Data, &refused)
		if err == nil && refused.Error == nil {
			err = errors.New("a refusal without its error")
		}
		if err != nil {
			return rep, unavailable("directory "+string(op)+" reply", err)
		}
		return rep, &kaiwa.Error{Code: refused.Error.Code, Message: refused.Error.Message}
	}
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return rep, unavailable("directory "+string(op)+" reply", err)
	}
	return rep, nil
}

// serve answers operation op with h on p's workers: each request is
// decoded (a malformed one is refused with bad_request), h is called with
// the tenant of its subject and a context bounded by the bus's Timeout,
// and h's reply, or its error as a refusal, is the answer.
func serve[Req, Resp any](p *dirPool, op dirOp[Req, Resp], h func(ctx context.Context, t kaiwa.TenantID, req Req) (Resp, error)) {
	p.handle(string(op), func(ctx context.Context, t kaiwa.TenantID, data []byte) (any, error) {
		var req Req
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "malformed directory request")
		}
		return h(ctx, t, req)
	})
}

// DirectoryQueue is the queue group of the processes serving the directory.
const DirectoryQueue = "kaiwa-directory"

// ServeDirectory answers the UAs' directory requests from d (the API tier's
// cached store), and their moderation requests (NG-word escalation) with m,
// using the given number of workers, until the subscription is ended. m
// may be nil: this process then leaves moderation requests to others, and
// with none serving them they answer unavailable.
//
// New sessions' lookups are answered in batches: whatever session lookups
// wait when a batcher is free go to the directory together (a connect storm
// then costs a few queries per batch, not three per connection), and a lone
// lookup goes at once. A d that is not a [kaiwa.SessionResolver] answers a
// batch one lookup after another. When d is also a [kaiwa.PlayerStarter]
// (the core's rules, [kaiwa.Core.Players]), a session lookup may ask for
// the user's own state in the same round trip, answered with its batch.
func (b *Bus) ServeDirectory(d kaiwa.Directory, m kaiwa.Moderation, workers int) (kaiwa.Subscription, error) {
	if workers <= 0 {
		workers = 32
	}
	sr, ok := d.(kaiwa.SessionResolver)
	if !ok {
		sr = oneByOne{d}
	}
	s := &dirServer{b: b, d: d, m: m, sr: sr}
	s.ps, _ = d.(kaiwa.PlayerStarter)
	s.sessions = newBatcher(s.resolveSessions, sessionAnswer{info: kaiwa.SessionInfo{Err: directoryBusy()}}, b.cfg.Timeout)
	s.batchers = []interface{ close() }{s.sessions}
	quick := s.pool(workers)
	// Session lookups wait for their batch on workers of their own, so
	// that they hold up no other request.
	waiting := s.pool(batchWaiters)
	serve(quick, opToken, s.token)
	serve(waiting, opSession, s.session)
	serve(waiting, opSessions, s.sessionsOp)
	serve(quick, opSettings, s.settings)
	serve(quick, opChannel, s.channel)
	serve(quick, opMember, s.member)
	serve(quick, opChannels, s.channels)
	serve(quick, opNG, s.ngList)
	serve(quick, opSanctions, s.sanctions)
	serve(quick, opSigning, s.signing)
	if m != nil {
		serve(quick, opSanction, s.sanction)
		serve(quick, opLift, s.lift)
		serve(quick, opKick, s.kick)
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// dirServer serves the directory. Its pools' handlers are set before
// their workers start and never change afterwards.
type dirServer struct {
	b  *Bus
	d  kaiwa.Directory
	m  kaiwa.Moderation
	sr kaiwa.SessionResolver
	// ps answers the player state asked with a session lookup; nil when
	// the directory cannot.
	ps kaiwa.PlayerStarter
	// sessions batches the session lookups (ServeDirectory's) and the
	// player state asked with them; batchers are every batcher to stop
	// with the server.
	sessions *batcher[sessionAsk, sessionAnswer]
	batchers []interface{ close() }
	pools    []*dirPool
	err      error // the first failure to subscribe
	once     sync.Once
}

// dirPool is a set of workers answering the operations served on it, from
// one channel their subscriptions share.
type dirPool struct {
	s        *dirServer
	queue    string // the queue group; "" for every process to answer
	ch       chan *nats.Msg
	workers  int
	handlers map[string]func(ctx context.Context, t kaiwa.TenantID, data []byte) (any, error)
	subs     []*nats.Subscription
	wg       sync.WaitGroup
}

// pool adds a pool of the given number of workers to s.
func (s *dirServer) pool(workers int) *dirPool {
	p := &dirPool{s: s, queue: DirectoryQueue, ch: make(chan *nats.Msg, 4096), workers: workers,
		handlers: map[string]func(context.Context, kaiwa.TenantID, []byte) (any, error){}}
	s.pools = append(s.pools, p)
	return p
}

// handle subscribes p to operation op's subject (in every tenant) and
// answers it with h.
func (p *dirPool) handle(op string, h func(ctx context.Context, t kaiwa.TenantID, data []byte) (any, error)) {
	p.handlers[op] = h
	if p.s.err != nil {
		return
	}
	sub, err := p.s.b.nc.ChanQueueSubscribe(p.s.b.subj.allDir(op), p.queue, p.ch)
	if err != nil {
		p.s.err = unavailable("serve directory "+op, err)
		return
	}
	p.subs = append(p.subs, sub)
}

// start makes sure the server has every subscription and starts the
// workers.
func (s *dirServer) start() error {
	if s.err == nil {
		if err := s.b.nc.FlushTimeout(s.b.cfg.Timeout); err != nil {
			s.err = unavailable("serve directory", err)
		}
	}
	if s.err != nil {
		_ = s.Unsubscribe()
		return s.err
	}
	for _, p := range s.pools {
		for range p.workers {
			p.wg.Add(1)
			go p.work()
		}
	}
	return nil
}

// Unsubscribe implements [kaiwa.Subscription]: it stops serving, once
// the requests received have been answered.
func (s *dirServer) Unsubscribe() error {
	var errs []error
	s.once.Do(func() {
		for _, p := range s.pools {
			for _, sub := range p.subs {
				errs = append(errs, sub.Unsubscribe())
			}
		}
		for _, p := range s.pools {
			close(p.ch)
			p.wg.Wait()
		}
		for _, b := range s.batchers {
			b.close()
		}
	})
	return errors.Join(errs...)
}

// work answers requests until the pool's channel is closed.
func (p *dirPool) work() {
	defer p.wg.Done()
	for m := range p.ch {
		t, op, ok := p.s.b.subj.parseDir(m.Subject)
		h := p.handlers[op]
		var rep any
		var err error
		if !ok || h == nil {
			err = kaiwa.Errorf(kaiwa.CodeBadRequest, "malformed directory request")
		} else {
			began := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), p.s.b.cfg.Timeout)
			rep, err = h(ctx, t, m.Data)
			cancel()
			p.s.b.met.served(op, err, began)
		}
		if kaiwa.ErrorCode(err) == kaiwa.CodeInternal {
			p.s.b.log.Error("directory", "op", op, "tenant", t, "err", err)
		}
		respond(m, rep, err)
	}
}

// respond answers m with rep, or with the refusal of err when not nil.
func respond(m *nats.Msg, rep any, err error) {
	if err != nil {
		rep = refusal(err)
	}
	data, err := json.Marshal(rep)
	if err != nil {
		data, _ = json.Marshal(refusal(err))
	}
	_ = m.Respond(data)
}

// The operations, as the API tier answers them.

func (s *dirServer) token(ctx context.Context, t kaiwa.TenantID, r tokenRequest) (tokenReply, error) {
	if err := checkTokenTenant(t, r.Token); err != nil {
		return tokenReply{}, err
	}
	id, err := s.d.ResolveToken(ctx, r.Token)
	if err == nil && id.Tenant != t {
		err = invalidToken()
	}
	return tokenReply{Identity: id}, err
}

func (s *dirServer) session(ctx context.Context, t kaiwa.TenantID, r sessionRequest) (sessionReply, error) {
	if err := checkTokenTenant(t, r.Token); err != nil {
		return sessionReply{}, err
	}
	return sessionOf(t, s.sessions.do(ctx, sessionAsk{tenant: t, token: r.Token, player: r.Player}))
}

// sessionOf is the reply to a session lookup of tenant t answered a.
func sessionOf(t kaiwa.TenantID, a sessionAnswer) (sessionReply, error) {
	info := a.info
	if info.Err == nil && info.Identity.Tenant != t {
		info.Err = invalidToken()
	}
	if info.Err != nil {
		return sessionReply{}, info.Err
	}
	return sessionReply{Identity: info.Identity, Sanctions: info.Sanctions, Channels: info.Channels, Player: a.player, Session: true}, nil
}

// sessionAsk is one session lookup waiting for its batch: the tenant whose
// subject it came on, the token, and whether the user's own state is
// asked too.
type sessionAsk struct {
	tenant kaiwa.TenantID
	token  string
	player bool
}

// sessionAnswer is a session lookup's answer; player is nil when it was not
// asked or cannot be answered now (too many channels, the store failing):
// the UA then asks for it by itself.
type sessionAnswer struct {
	info   kaiwa.SessionInfo
	player *kaiwa.PlayerStart
}

// resolveSessions answers a batch of session lookups, then the player state
// of those that asked for it (the user's member channels, direct and inbox
// channels left out: [kaiwa.SharedChannels]) as one batch too: a connect
// is one batch, not one for the session and another for the player.
func (s *dirServer) resolveSessions(ctx context.Context, asks []sessionAsk) []sessionAnswer {
	tokens := make([]string, len(asks))
	for i, a := range asks {
		tokens[i] = a.token
	}
	infos := s.sr.ResolveSessions(ctx, tokens)
	out := make([]sessionAnswer, len(asks))
	var (
		reqs []kaiwa.PlayerStartRequest
		from []int // index in asks of each of reqs
	)
	for i, a := range asks {
		out[i].info = infos[i]
		if a.player && s.ps != nil && infos[i].Err == nil && infos[i].Identity.Tenant == a.tenant {
			reqs = append(reqs, kaiwa.PlayerStartRequest{Tenant: a.tenant, User: infos[i].Identity.User, Channels: kaiwa.SharedChannels(infos[i].Channels)})
			from = append(from, i)
		}
	}
	if len(reqs) > 0 {
		for j, res := range s.ps.StartPlayers(ctx, reqs) {
			if res.Err == nil {
				out[from[j]].player = &res.Start
			}
		}
	}
	return out
}

func (s *dirServer) settings(ctx context.Context, t kaiwa.TenantID, _ settingsRequest) (settingsReply, error) {
	st, err := s.d.TenantSettings(ctx, t)
	return settingsReply{Settings: st}, err
}

func (s *dirServer) channel(ctx context.Context, t kaiwa.TenantID, r channelRequest) (channelReply, error) {
	c, err := s.d.Channel(ctx, t, r.Channel)
	return channelReply{Channel: c}, err
}

func (s *dirServer) member(ctx context.Context, t kaiwa.TenantID, r memberRequest) (memberReply, error) {
	ok, err := s.d.IsMember(ctx, t, r.Channel, r.User)
	return memberReply{Member: ok}, err
}

func (s *dirServer) channels(ctx context.Context, t kaiwa.TenantID, r channelsRequest) (channelsReply, error) {
	chs, err := s.d.MemberChannels(ctx, t, r.User)
	return channelsReply{Channels: chs}, err
}

func (s *dirServer) ngList(ctx context.Context, t kaiwa.TenantID, _ ngRequest) (ngReply, error) {
	l, err := s.d.NGList(ctx, t)
	return ngReply{List: l}, err
}

func (s *dirServer) sanctions(ctx context.Context, t kaiwa.TenantID, r sanctionsRequest) (sanctionsReply, error) {
	list, err := s.d.Sanctions(ctx, t, r.User)
	return sanctionsReply{Sanctions: list}, err
}

func (s *dirServer) sanction(ctx context.Context, t kaiwa.TenantID, r sanctionRequest) (doneReply, error) {
	r.Sanction.Tenant = t
	return doneReply{}, s.m.Sanction(ctx, r.Sanction)
}

func (s *dirServer) lift(ctx context.Context, t kaiwa.TenantID, r liftRequest) (doneReply, error) {
	return doneReply{}, s.m.Lift(ctx, t, r.User, r.Kind)
}

func (s *dirServer) kick(ctx context.Context, t kaiwa.TenantID, r kickRequest) (doneReply, error) {
	return doneReply{}, s.m.Kick(ctx, t, r.User, r.Reason)
}

// directoryBusy is the error of a lookup whose caller gave up waiting for
// its batch.
func directoryBusy() error { return kaiwa.Errorf(kaiwa.CodeUnavailable, "directory busy, try again") }

// invalidToken is the error of a token that is not the tenant's.
func invalidToken() error { return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token") }

// checkTokenTenant refuses a token that does not name tenant t.
func checkTokenTenant(t kaiwa.TenantID, token string) error {
	if ct, ok := kaiwa.CredentialTenant(token); !ok || ct != t {
		return invalidToken()
	}
	return nil
}

// batchers is how many batches of lookups of one kind may be asked at
// once; maxBatch bounds one batch; batchWaiters is how many lookups may
// wait for their batch (and workers wait with them): enough for the
// batches asked and as many again to fill the next ones.
const (
	batchers     = 2
	maxBatch     = 64
	batchWaiters = 2 * batchers * maxBatch
)

// batcher answers lookups in batches: a free batcher takes every lookup
// waiting (up to a batch) to fn at once, so that a connect storm costs a
// few queries per batch, and a lone lookup goes at once.
type batcher[Q, R any] struct {
	fn      func(ctx context.Context, qs []Q) []R // one answer per lookup, in order
	busy    R                                     // the answer of a lookup whose caller gave up
	timeout time.Duration
	queue   chan *batchLookup[Q, R]
	wg      sync.WaitGroup
}

// batchLookup is a lookup waiting for its batch.
type batchLookup[Q, R any] struct {
	q    Q
	done chan R // buffered: a batcher never waits for the lookup
}

// newBatcher starts the batchers of fn, each batch bounded by timeout;
// busy is the answer when the caller's context ends first.
func newBatcher[Q, R any](fn func(ctx context.Context, qs []Q) []R, busy R, timeout time.Duration) *batcher[Q, R] {
	b := &batcher[Q, R]{fn: fn, busy: busy, timeout: timeout, queue: make(chan *batchLookup[Q, R], batchWaiters)}
	for range batchers {
		b.wg.Add(1)
		go b.run()
	}
	return b
}

// do looks q up in the next batch.
func (b *batcher[Q, R]) do(ctx context.Context, q Q) R {
	return b.doAll(ctx, []Q{q})[0]
}

// doAll looks every one of qs up in the next batches, and returns their
// answers in order.
func (b *batcher[Q, R]) doAll(ctx context.Context, qs []Q) []R {
	ls := make([]*batchLookup[Q, R], len(qs))
	for i, q := range qs {
		l := &batchLookup[Q, R]{q: q, done: make(chan R, 1)}
		select {
		case b.queue <- l:
			ls[i] = l
		case <-ctx.Done():
		}
	}
	out := make([]R, len(qs))
	for i, l := range ls {
		out[i] = b.busy
		if l == nil {
			continue
		}
		select {
		case out[i] = <-l.done:
		case <-ctx.Done():
		}
	}
	return out
}

// run answers batches until the queue is closed.
func (b *batcher[Q, R]) run() {
	defer b.wg.Done()
	batch := make([]*batchLookup[Q, R], 0, maxBatch)
	qs := make([]Q, 0, maxBatch)
	for first := range b.queue {
		batch = append(batch[:0], first)
	more:
		for len(batch) < maxBatch {
			select {
			case l, ok := <-b.queue:
				if !ok {
					break more
				}
				batch = append(batch, l)
			default:
				break more
			}
		}
		qs = qs[:0]
		for _, l := range batch {
			qs = append(qs, l.q)
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		rs := b.fn(ctx, qs)
		cancel()
		for i, l := range batch {
			l.done <- rs[i]
		}
		clear(batch)
		clear(qs)
	}
}

// close stops the batchers once the lookups queued are answered.
func (b *batcher[Q, R]) close() {
	close(b.queue)
	b.wg.Wait()
}

// oneByOne is the [kaiwa.SessionResolver] of a directory that is not one:
// it looks each token up by itself.
type oneByOne struct{ d kaiwa.Directory }

// ResolveSessions implements [kaiwa.SessionResolver].
func (o oneByOne) ResolveSessions(ctx context.Context, tokens []string) []kaiwa.SessionInfo {
	out := make([]kaiwa.SessionInfo, len(tokens))
	for i, tok := range tokens {
		in := &out[i]
		if in.Identity, in.Err = o.d.ResolveToken(ctx, tok); in.Err != nil {
			continue
		}
		if in.Sanctions, in.Err = o.d.Sanctions(ctx, in.Identity.Tenant, in.Identity.User); in.Err != nil {
			continue
		}
		in.Channels, in.Err = o.d.MemberChannels(ctx, in.Identity.Tenant, in.Identity.User)
	}
	return out
}

// Remote is what a UA asks the API tier over the bus: the directory,
// moderation (for NG-word escalation), and the signing state of tenants
// (for signed tokens).
type Remote interface {
	kaiwa.Directory
	kaiwa.Moderation
	SigningState(ctx context.Context, t kaiwa.TenantID) (kaiwa.SigningState, error)
}

// Directory returns the [Remote] that asks the API tier over the bus. It
// also answers everything a new session needs in one request
// (ResolveSession).
func (b *Bus) Directory() Remote { return dirClient{b} }

// dirClient asks the API tier, one [call] a method.
type dirClient struct{ b *Bus }

var _ Remote = dirClient{}

// tokenTenant returns the tenant a user token names.
func tokenTenant(token string) (kaiwa.TenantID, error) {
	t, ok := kaiwa.CredentialTenant(token)
	if !ok {
		return "", invalidToken()
	}
	return t, nil
}

// checkIdentity checks the identity the API tier answered for a token of
// tenant t: it must be the tenant's, and not expired by this process's
// clock.
func checkIdentity(t kaiwa.TenantID, id kaiwa.Identity) error {
	if id.Tenant != t || id.User == "" {
		return kaiwa.Errorf(kaiwa.CodeUnavailable, "directory reply without identity")
	}
	if !id.ExpiresAt.IsZero() && time.Now().After(id.ExpiresAt) {
		return kaiwa.Errorf(kaiwa.CodeTokenExpired, "token expired")
	}
	return nil
}

// ResolveToken implements [kaiwa.Directory].
func (c dirClient) ResolveToken(ctx context.Context, token string) (kaiwa.Identity, error) {
	t, err := tokenTenant(token)
	if err != nil {
		return kaiwa.Identity{}, err
	}
	rep, err := call(ctx, c.b, t, opToken, tokenRequest{Token: token})
	if err == nil {
		err = checkIdentity(t, rep.Identity)
	}
	if err != nil {
		return kaiwa.Identity{}, err
	}
	return rep.Identity, nil
}

// ResolveSession resolves a token and returns, in the same round trip, the
// user's sanctions in force and member channels.
func (c dirClient) ResolveSession(ctx context.Context, token string) (kaiwa.Identity, []kaiwa.Sanction, []string, error) {
	rep, err := c.resolveSession(ctx, token, false)
	return rep.Identity, rep.Sanctions, rep.Channels, err
}

// ResolveSessionPlayer is [dirClient.ResolveSession] that also returns the
// user's own state for the member channels (blocks, unread counts), nil
// when the API tier did not answer it.
func (c dirClient) ResolveSessionPlayer(ctx context.Context, token string) (kaiwa.Identity, []kaiwa.Sanction, []string, *kaiwa.PlayerStart, error) {
	rep, err := c.resolveSession(ctx, token, true)
	return rep.Identity, rep.Sanctions, rep.Channels, rep.Player, err
}

func (c dirClient) resolveSession(ctx context.Context, token string, player bool) (sessionReply, error) {
	t, err := tokenTenant(token)
	if err != nil {
		return sessionReply{}, err
	}
	rep, err := c.b.sessionQ.resolve(ctx, c.b, t, sessionRequest{Token: token, Player: player})
	if err == nil {
		err = checkIdentity(t, rep.Identity)
	}
	if err != nil {
		return sessionReply{}, err
	}
	rep.Sanctions = tenantSanctions(t, rep.Sanctions)
	return rep, nil
}

// TenantSettings implements [kaiwa.Directory], with defaults applied.
func (c dirClient) TenantSettings(ctx context.Context, t kaiwa.TenantID) (kaiwa.Settings, error) {
	rep, err := call(ctx, c.b, t, opSettings, settingsRequest{})
	if err != nil {
		return kaiwa.Settings{}, err
	}
	return rep.Settings.WithDefaults(), nil
}

// Channel implements [kaiwa.Directory].
func (c dirClient) Channel(ctx context.Context, t kaiwa.TenantID, ch string) (kaiwa.Channel, error) {
	rep, err := call(ctx, c.b, t, opChannel, channelRequest{Channel: ch})
	if err != nil {
		return kaiwa.Channel{}, err
	}
	rep.Channel.Tenant = t
	return rep.Channel, nil
}

// IsMember implements [kaiwa.Directory].
func (c dirClient) IsMember(ctx context.Context, t kaiwa.TenantID, ch, user string) (bool, error) {
	rep, err := call(ctx, c.b, t, opMember, memberRequest{Channel: ch, User: user})
	return rep.Member, err
}

// MemberChannels implements [kaiwa.Directory].
func (c dirClient) MemberChannels(ctx context.Context, t kaiwa.TenantID, user string) ([]string, error) {
	rep, err := call(ctx, c.b, t, opChannels, channelsRequest{User: user})
	return rep.Channels, err
}

// NGList implements [kaiwa.Directory].
func (c dirClient) NGList(ctx context.Context, t kaiwa.TenantID) (kaiwa.NGList, error) {
	rep, err := call(ctx, c.b, t, opNG, ngRequest{})
	return rep.List, err
}

// Sanctions implements [kaiwa.Directory].
func (c dirClient) Sanctions(ctx context.Context, t kaiwa.TenantID, user string) ([]kaiwa.Sanction, error) {
	rep, err := call(ctx, c.b, t, opSanctions, sanctionsRequest{User: user})
	return tenantSanctions(t, rep.Sanctions), err
}

// tenantSanctions sets the tenant of sanctions the API tier answered.
func tenantSanctions(t kaiwa.TenantID, list []kaiwa.Sanction) []kaiwa.Sanction {
	for i := range list {
		list[i].Tenant = t
	}
	return list
}

// Sanction implements [kaiwa.Moderation].
func (c dirClient) Sanction(ctx context.Context, s kaiwa.Sanction) error {
	_, err := call(ctx, c.b, s.Tenant, opSanction, sanctionRequest{Sanction: s})
	return err
}

// Lift implements [kaiwa.Moderation].
func (c dirClient) Lift(ctx context.Context, t kaiwa.TenantID, user string, kind kaiwa.SanctionKind) error {
	_, err := call(ctx, c.b, t, opLift, liftRequest{User: user, Kind: kind})
	return err
}

// Kick implements [kaiwa.Moderation].
func (c dirClient) Kick(ctx context.Context, t kaiwa.TenantID, user, reason string) error {
	_, err := call(ctx, c.b, t, opKick, kickRequest{User: user, Reason: reason})
	return err
}
