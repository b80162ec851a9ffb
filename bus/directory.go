package bus

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/nats-io/nats.go"
)

// Directory operations, the last token of a directory subject.
const (
	dirToken    = "token"
	dirSettings = "settings"
	dirChannel  = "channel"
	dirMember   = "member"
	dirChannels = "channels"
	dirNG       = "ng"
	dirSanction = "sanctions"
	dirModerate = "moderate"
	dirSession  = "session"
)

type dirRequest struct {
	Token string `json:"token,omitempty"`
	Ch    string `json:"ch,omitempty"`
	User  string `json:"user,omitempty"`
	// Moderation requests.
	Action   string          `json:"action,omitempty"` // sanction, lift, kick
	Sanction *kaiwa.Sanction `json:"sanction,omitempty"`
	Kind     string          `json:"kind,omitempty"`
	Reason   string          `json:"reason,omitempty"`
}

type wireError struct {
	Code    kaiwa.Code `json:"code"`
	Message string     `json:"message"`
}

type dirReply struct {
	Error     *wireError       `json:"error,omitempty"`
	Identity  *kaiwa.Identity  `json:"identity,omitempty"`
	Settings  *kaiwa.Settings  `json:"settings,omitempty"`
	Channel   *kaiwa.Channel   `json:"channel,omitempty"`
	Member    bool             `json:"member,omitempty"`
	Channels  []string         `json:"channels,omitempty"`
	NG        *kaiwa.NGList    `json:"ng,omitempty"`
	Sanctions []kaiwa.Sanction `json:"sanctions,omitempty"`
	Session   bool             `json:"session,omitempty"`
}

// DirectoryQueue is the queue group of the processes serving the directory.
const DirectoryQueue = "kaiwa-directory"

// ServeDirectory answers the UAs' directory requests from d (the API tier's
// cached store), and their moderation requests (NG-word escalation) with m,
// using the given number of workers, until the subscription is ended. m
// may be nil: moderation requests then answer unavailable.
//
// When d is a [kaiwa.SessionResolver], new sessions' lookups are answered
// in batches: whatever session requests wait when a batcher is free go to
// the directory together (a connect storm then costs a few queries per
// batch, not three per connection), and a lone request goes at once.
func (b *Bus) ServeDirectory(d kaiwa.Directory, m kaiwa.Moderation, workers int) (kaiwa.Subscription, error) {
	if workers <= 0 {
		workers = 32
	}
	ch := make(chan *nats.Msg, 4096)
	s, err := b.nc.ChanQueueSubscribe(b.subj.allDir(), DirectoryQueue, ch)
	if err != nil {
		return nil, unavailable("serve directory", err)
	}
	if err := b.nc.FlushTimeout(b.cfg.Timeout); err != nil {
		_ = s.Unsubscribe()
		return nil, unavailable("serve directory", err)
	}
	srv := &dirServer{b: b, d: d, m: m, ch: ch, sub: s}
	if sr, ok := d.(kaiwa.SessionResolver); ok {
		srv.sessions = make(chan sessionRequest, 4096)
		for range sessionBatchers {
			srv.bwg.Add(1)
			go srv.batcher(sr)
		}
	}
	for range workers {
		srv.wg.Add(1)
		go srv.work()
	}
	return srv, nil
}

// sessionBatchers is how many batches of session lookups may be asked at
// once; maxSessionBatch bounds one batch.
const (
	sessionBatchers = 2
	maxSessionBatch = 64
)

// sessionRequest is a session lookup waiting for its batch.
type sessionRequest struct {
	m      *nats.Msg
	tenant kaiwa.TenantID
	token  string
}

type dirServer struct {
	b        *Bus
	d        kaiwa.Directory
	m        kaiwa.Moderation
	ch       chan *nats.Msg
	sub      *nats.Subscription
	wg       sync.WaitGroup
	once     sync.Once
	sessions chan sessionRequest // to the batchers; nil without them
	bwg      sync.WaitGroup
}

func (s *dirServer) Unsubscribe() error {
	var err error
	s.once.Do(func() {
		err = s.sub.Unsubscribe()
		close(s.ch)
		s.wg.Wait()
		if s.sessions != nil {
			close(s.sessions)
			s.bwg.Wait()
		}
	})
	return err
}

func (s *dirServer) work() {
	defer s.wg.Done()
	for m := range s.ch {
		t, op, req, err := s.parse(m)
		if err == nil && op == dirSession && s.sessions != nil {
			if checkTokenTenant(t, req.Token) == nil {
				s.sessions <- sessionRequest{m: m, tenant: t, token: req.Token}
				continue
			}
		}
		var rep dirReply
		if err != nil {
			rep = errReply(err)
		} else {
			rep = s.answer(t, op, req)
		}
		respond(m, rep)
	}
}

// respond sends rep as the reply to m.
func respond(m *nats.Msg, rep dirReply) {
	data, err := json.Marshal(rep)
	if err != nil {
		return
	}
	_ = m.Respond(data)
}

// batcher answers session lookups: everything waiting (up to a batch) in
// one call to the directory.
func (s *dirServer) batcher(sr kaiwa.SessionResolver) {
	defer s.bwg.Done()
	batch := make([]sessionRequest, 0, maxSessionBatch)
	tokens := make([]string, 0, maxSessionBatch)
	for first := range s.sessions {
		batch = append(batch[:0], first)
	more:
		for len(batch) < maxSessionBatch {
			select {
			case r, ok := <-s.sessions:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		tokens = tokens[:0]
		for _, r := range batch {
			tokens = append(tokens, r.token)
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.Timeout)
		infos := sr.ResolveSessions(ctx, tokens)
		cancel()
		for i, r := range batch {
			info := infos[i]
			switch {
			case info.Err != nil:
				respond(r.m, errReply(info.Err))
			case info.Identity.Tenant != r.tenant:
				respond(r.m, errReply(kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")))
			default:
				respond(r.m, dirReply{Identity: &info.Identity, Sanctions: info.Sanctions, Channels: info.Channels, Session: true})
			}
		}
		clear(batch)
	}
}

// parse reads a directory request: its tenant (from the subject), its
// operation and its body.
func (s *dirServer) parse(m *nats.Msg) (kaiwa.TenantID, string, dirRequest, error) {
	t, rest, ok := s.b.subj.parseTenant(m.Subject)
	op, found := strings.CutPrefix(rest, "dir.")
	var req dirRequest
	if !ok || !found || json.Unmarshal(m.Data, &req) != nil {
		return "", "", req, kaiwa.Errorf(kaiwa.CodeBadRequest, "malformed directory request")
	}
	return t, op, req, nil
}

func (s *dirServer) answer(t kaiwa.TenantID, op string, req dirRequest) dirReply {
	ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.Timeout)
	defer cancel()
	switch op {
	case dirToken:
		id, err := s.resolve(ctx, t, req.Token)
		if err != nil {
			return errReply(err)
		}
		return dirReply{Identity: &id}
	case dirSession:
		// Everything a new session needs, in one round trip.
		id, err := s.resolve(ctx, t, req.Token)
		if err != nil {
			return errReply(err)
		}
		sanctions, err := s.d.Sanctions(ctx, t, id.User)
		if err != nil {
			return errReply(err)
		}
		chs, err := s.d.MemberChannels(ctx, t, id.User)
		if err != nil {
			return errReply(err)
		}
		return dirReply{Identity: &id, Sanctions: sanctions, Channels: chs, Session: true}
	case dirSettings:
		st, err := s.d.TenantSettings(ctx, t)
		if err != nil {
			return errReply(err)
		}
		return dirReply{Settings: &st}
	case dirChannel:
		c, err := s.d.Channel(ctx, t, req.Ch)
		if err != nil {
			return errReply(err)
		}
		return dirReply{Channel: &c}
	case dirMember:
		ok, err := s.d.IsMember(ctx, t, req.Ch, req.User)
		if err != nil {
			return errReply(err)
		}
		return dirReply{Member: ok}
	case dirChannels:
		chs, err := s.d.MemberChannels(ctx, t, req.User)
		if err != nil {
			return errReply(err)
		}
		return dirReply{Channels: chs}
	case dirNG:
		l, err := s.d.NGList(ctx, t)
		if err != nil {
			return errReply(err)
		}
		return dirReply{NG: &l}
	case dirSanction:
		list, err := s.d.Sanctions(ctx, t, req.User)
		if err != nil {
			return errReply(err)
		}
		return dirReply{Sanctions: list}
	case dirModerate:
		if s.m == nil {
			return errReply(kaiwa.Errorf(kaiwa.CodeUnavailable, "moderation is not served here"))
		}
		var err error
		switch req.Action {
		case "sanction":
			if req.Sanction == nil {
				return errReply(kaiwa.Errorf(kaiwa.CodeBadRequest, "missing sanction"))
			}
			sn := *req.Sanction
			sn.Tenant = t
			err = s.m.Sanction(ctx, sn)
		case "lift":
			err = s.m.Lift(ctx, t, req.User, kaiwa.SanctionKind(req.Kind))
		case "kick":
			err = s.m.Kick(ctx, t, req.User, req.Reason)
		default:
			err = kaiwa.Errorf(kaiwa.CodeBadRequest, "unknown moderation action")
		}
		if err != nil {
			return errReply(err)
		}
		return dirReply{}
	}
	return errReply(kaiwa.Errorf(kaiwa.CodeBadRequest, "unknown directory operation"))
}

// resolve resolves a token that must belong to tenant t, the tenant of the
// request's subject.
func (s *dirServer) resolve(ctx context.Context, t kaiwa.TenantID, token string) (kaiwa.Identity, error) {
	if err := checkTokenTenant(t, token); err != nil {
		return kaiwa.Identity{}, err
	}
	id, err := s.d.ResolveToken(ctx, token)
	if err != nil {
		return kaiwa.Identity{}, err
	}
	if id.Tenant != t {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
	}
	return id, nil
}

// checkTokenTenant refuses a token that does not name tenant t.
func checkTokenTenant(t kaiwa.TenantID, token string) error {
	if ct, ok := kaiwa.CredentialTenant(token); !ok || ct != t {
		return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
	}
	return nil
}

func errReply(err error) dirReply {
	code := kaiwa.ErrorCode(err)
	if code == kaiwa.CodeInternal {
		return dirReply{Error: &wireError{Code: kaiwa.CodeUnavailable, Message: "directory unavailable"}}
	}
	return dirReply{Error: &wireError{Code: code, Message: kaiwa.ErrorMessage(err)}}
}

// Remote is what a UA asks the API tier over the bus: the directory, and
// moderation (for NG-word escalation).
type Remote interface {
	kaiwa.Directory
	kaiwa.Moderation
}

// Directory returns the [Remote] that asks the API tier over the bus.
func (b *Bus) Directory() Remote { return dirClient{b} }

type dirClient struct{ b *Bus }

func (c dirClient) call(ctx context.Context, t kaiwa.TenantID, op string, req dirRequest) (dirReply, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return dirReply{}, err
	}
	ctx, cancel := c.b.timeout(ctx)
	defer cancel()
	m, err := c.b.nc.RequestWithContext(ctx, c.b.subj.dir(t, op), data)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return dirReply{}, kaiwa.Errorf(kaiwa.CodeUnavailable, "no API server is answering; try again")
		}
		return dirReply{}, unavailable("directory request", err)
	}
	var rep dirReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return dirReply{}, unavailable("directory reply", err)
	}
	if rep.Error != nil {
		return rep, &kaiwa.Error{Code: rep.Error.Code, Message: rep.Error.Message}
	}
	return rep, nil
}

func (c dirClient) ResolveToken(ctx context.Context, token string) (kaiwa.Identity, error) {
	t, ok := kaiwa.CredentialTenant(token)
	if !ok {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
	}
	rep, err := c.call(ctx, t, dirToken, dirRequest{Token: token})
	if err != nil {
		return kaiwa.Identity{}, err
	}
	if rep.Identity == nil {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnavailable, "directory reply without identity")
	}
	if !rep.Identity.ExpiresAt.IsZero() && time.Now().After(rep.Identity.ExpiresAt) {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeTokenExpired, "token expired")
	}
	return *rep.Identity, nil
}

// ResolveSession resolves a token and returns, in the same round trip, the
// user's sanctions in force and member channels.
func (c dirClient) ResolveSession(ctx context.Context, token string) (kaiwa.Identity, []kaiwa.Sanction, []string, error) {
	t, ok := kaiwa.CredentialTenant(token)
	if !ok {
		return kaiwa.Identity{}, nil, nil, kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
	}
	rep, err := c.call(ctx, t, dirSession, dirRequest{Token: token})
	if err != nil {
		return kaiwa.Identity{}, nil, nil, err
	}
	if rep.Identity == nil || !rep.Session {
		return kaiwa.Identity{}, nil, nil, kaiwa.Errorf(kaiwa.CodeUnavailable, "directory reply without a session")
	}
	if !rep.Identity.ExpiresAt.IsZero() && time.Now().After(rep.Identity.ExpiresAt) {
		return kaiwa.Identity{}, nil, nil, kaiwa.Errorf(kaiwa.CodeTokenExpired, "token expired")
	}
	for i := range rep.Sanctions {
		rep.Sanctions[i].Tenant = t
	}
	return *rep.Identity, rep.Sanctions, rep.Channels, nil
}

func (c dirClient) TenantSettings(ctx context.Context, t kaiwa.TenantID) (kaiwa.Settings, error) {
	rep, err := c.call(ctx, t, dirSettings, dirRequest{})
	if err != nil {
		return kaiwa.Settings{}, err
	}
	if rep.Settings == nil {
		return kaiwa.DefaultSettings(), nil
	}
	return rep.Settings.WithDefaults(), nil
}

func (c dirClient) Channel(ctx context.Context, t kaiwa.TenantID, ch string) (kaiwa.Channel, error) {
	rep, err := c.call(ctx, t, dirChannel, dirRequest{Ch: ch})
	if err != nil {
		return kaiwa.Channel{}, err
	}
	if rep.Channel == nil {
		return kaiwa.Channel{}, kaiwa.Errorf(kaiwa.CodeNotFound, "channel not found")
	}
	rep.Channel.Tenant = t
	return *rep.Channel, nil
}

func (c dirClient) IsMember(ctx context.Context, t kaiwa.TenantID, ch, user string) (bool, error) {
	rep, err := c.call(ctx, t, dirMember, dirRequest{Ch: ch, User: user})
	return rep.Member, err
}

func (c dirClient) MemberChannels(ctx context.Context, t kaiwa.TenantID, user string) ([]string, error) {
	rep, err := c.call(ctx, t, dirChannels, dirRequest{User: user})
	return rep.Channels, err
}

func (c dirClient) NGList(ctx context.Context, t kaiwa.TenantID) (kaiwa.NGList, error) {
	rep, err := c.call(ctx, t, dirNG, dirRequest{})
	if err != nil {
		return kaiwa.NGList{}, err
	}
	if rep.NG == nil {
		return kaiwa.NGList{}, nil
	}
	return *rep.NG, nil
}

func (c dirClient) Sanctions(ctx context.Context, t kaiwa.TenantID, user string) ([]kaiwa.Sanction, error) {
	rep, err := c.call(ctx, t, dirSanction, dirRequest{User: user})
	for i := range rep.Sanctions {
		rep.Sanctions[i].Tenant = t
	}
	return rep.Sanctions, err
}

func (c dirClient) Sanction(ctx context.Context, s kaiwa.Sanction) error {
	_, err := c.call(ctx, s.Tenant, dirModerate, dirRequest{Action: "sanction", Sanction: &s})
	return err
}

func (c dirClient) Lift(ctx context.Context, t kaiwa.TenantID, user string, kind kaiwa.SanctionKind) error {
	_, err := c.call(ctx, t, dirModerate, dirRequest{Action: "lift", User: user, Kind: string(kind)})
	return err
}

func (c dirClient) Kick(ctx context.Context, t kaiwa.TenantID, user, reason string) error {
	_, err := c.call(ctx, t, dirModerate, dirRequest{Action: "kick", User: user, Reason: reason})
	return err
}
