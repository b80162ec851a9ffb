package ua

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/stats"
	"github.com/kaiwa-chat/kaiwa/ua/internal/outbox"
	"github.com/kaiwa-chat/kaiwa/versions"
	"github.com/prometheus/client_golang/prometheus"
)

// Config holds a UA server's dependencies and tunables. Zero tunables take
// the defaults noted.
type Config struct {
	// Version is the protocol version this server speaks.
	Version versions.Version
	// Directory answers token, channel and membership questions.
	Directory kaiwa.Directory
	// Bus carries messages, presence and live changes.
	Bus kaiwa.Bus
	// Recorder records the sessions' own events (connect, disconnect,
	// join, leave, NG words caught). Nil records none.
	Recorder kaiwa.Recorder
	// Moderation mutes users who reach the tenant's NG-word escalation
	// threshold. Nil disables escalation.
	Moderation kaiwa.Moderation
	// CompileNG builds a tenant's NG matcher. Nil disables NG filtering.
	CompileNG func(kaiwa.NGList) (Matcher, error)
	// Players applies what players do besides sending (edit, delete,
	// react, read, block, search) through the API tier. Nil refuses those
	// ops with unavailable.
	Players kaiwa.Players
	// Stream reads single messages (the message a reply quotes). Nil
	// uses Bus when it is one.
	Stream kaiwa.StreamReader
	// Presence answers presence questions across UAs. Nil: this server
	// answers none, and its clients' presence op is unavailable.
	Presence PresenceBus
	// HookClient calls the tenants' before-send hooks (egress's client in
	// production: public addresses only). Nil: every hook fails, and its
	// tenant's timeout policy applies.
	HookClient *http.Client
	// Limits shares admissions with the other UAs, for the tenants'
	// per-user and per-tenant message rates. Nil: those rates are not
	// enforced.
	Limits LimitBus
	Logger *slog.Logger

	// SendQueueBytes bounds each session's outbox: the bytes given to it
	// and not yet on the socket. A client whose outbox would pass it is
	// closed as a slow consumer (4008). Default 1 MiB.
	SendQueueBytes int
	// PingInterval between WebSocket pings; a session that answers none for
	// two intervals is closed. Default 25s.
	PingInterval time.Duration
	// AuthTimeout is how long a client has to send its auth frame. Default 10s.
	AuthTimeout time.Duration
	// WriteTimeout is how long a session's socket may take nothing while
	// frames wait before the session is dropped. It also bounds a close
	// (with the frames queued before it) and each wait of a resume's
	// replay for room in the outbox. Default 10s.
	WriteTimeout time.Duration
	// MaxFrame is the largest frame answered normally; larger ones (up to
	// ReadLimit) get too_large. Default 16 KiB.
	MaxFrame int
	// ReadLimit is the largest frame read at all; a larger one closes the
	// session with 1009. Default 64 KiB.
	ReadLimit int64
	// BufferSize is each session's read buffer, in bytes. Client frames
	// are small; a larger one is read in several calls. Default 1024.
	BufferSize int
	// AbuseLimit refused ops within AbuseWindow close the session with 4029.
	// Defaults 50 and 10s.
	AbuseLimit  int
	AbuseWindow time.Duration
	// DrainWindow spreads the sessions' reconnect requests at shutdown over
	// this long, so they do not come back as one storm. Default 30s.
	DrainWindow time.Duration
	// ReconnectAfter bounds the random extra delay each client is told to
	// wait before reconnecting. Default 1s.
	ReconnectAfter time.Duration
	// MaxReplay bounds the messages one channel's resume replays. Default 1000.
	MaxReplay int
	// MaxReplayPerConnect bounds the messages one resume replays over all
	// its channels; channels past it are resumed with recovered false.
	// Default 2000.
	MaxReplayPerConnect int
	// MaxReplayPerUserMinute bounds the messages this server replays to
	// one user's resumes in a minute (a token bucket), so that reconnecting
	// in a loop cannot turn small auth frames into large replays. Default
	// 5000.
	MaxReplayPerUserMinute int
	// RecentPerChannel is how many of a channel's latest messages its room
	// keeps for resumes (0: default 64; negative: none).
	RecentPerChannel int
	// RoomLinger keeps a channel's subscription and recent messages this
	// long after its last local member left (0: default 30s; negative:
	// none), so that members coming back after a storm resume from memory.
	RoomLinger time.Duration
	// PresenceGrace is how long a channel's other members are not told
	// that a user whose session ended left: when the user joins again
	// within it (a reconnect, on this server or another), they are told
	// neither the leave nor the join, so that a reconnect storm is not two
	// presence events to every other member of every channel. 0: default
	// 3s; negative: none (every leave is told at once).
	PresenceGrace time.Duration
	// PresenceStormGrace is the presence grace of a channel whose members
	// drop together: once a room holds the leaves of a tenth of its
	// sessions (at least [presenceStormMin]), the leaves it holds from
	// then on wait this long, so that players coming back from a mass
	// drop (a network outage, a UA restart) take longer than the grace to
	// reconnect and still flash neither a leave nor a join to the others.
	// 0: default 30s; negative or below PresenceGrace: PresenceGrace.
	PresenceStormGrace time.Duration
	// RepairMax bounds the missed messages one gap in a channel's live
	// delivery replays from the stream; the rest of a larger gap is
	// skipped (and counted). Default 1000.
	RepairMax int
	// ReloadAgain is when a tenant's NG list is loaded a second time after
	// a change, in case the first answer came from a stale cache. Default
	// 500ms.
	ReloadAgain time.Duration

	// Stats receives the per-tenant figures the tenant API's stats
	// gather (sessions, deliveries, round-trip times, NG hits, slow
	// consumers). Nil keeps none.
	Stats *stats.Book
	// Metrics are more collectors served at /metrics with the UA's own
	// (the bus's, for one).
	Metrics []prometheus.Collector
	// FenceAfter is how long the bus may stay unreachable before the
	// server fences itself (see [BusPinger]): its sessions are asked to
	// reconnect elsewhere, new ones are refused and /readyz fails until
	// the bus answers again. Default 5s; negative: never.
	FenceAfter time.Duration
	// FenceSpread bounds the random wait each fenced session is told
	// before reconnecting, so that they do not reach the other UAs as
	// one storm. Default 5s.
	FenceSpread time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = 1 << 20
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = 16 << 10
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = 64 << 10
	}
	if c.BufferSize <= 0 {
		c.BufferSize = 1024
	}
	if c.AbuseLimit <= 0 {
		c.AbuseLimit = 50
	}
	if c.AbuseWindow <= 0 {
		c.AbuseWindow = 10 * time.Second
	}
	if c.DrainWindow <= 0 {
		c.DrainWindow = 30 * time.Second
	}
	if c.ReconnectAfter <= 0 {
		c.ReconnectAfter = time.Second
	}
	if c.MaxReplay <= 0 {
		c.MaxReplay = 1000
	}
	if c.MaxReplayPerConnect <= 0 {
		c.MaxReplayPerConnect = 2000
	}
	if c.MaxReplayPerUserMinute <= 0 {
		c.MaxReplayPerUserMinute = 5000
	}
	switch {
	case c.RecentPerChannel == 0:
		c.RecentPerChannel = 64
	case c.RecentPerChannel < 0:
		c.RecentPerChannel = 0
	}
	switch {
	case c.RoomLinger == 0:
		c.RoomLinger = 30 * time.Second
	case c.RoomLinger < 0:
		c.RoomLinger = 0
	}
	switch {
	case c.PresenceGrace == 0:
		c.PresenceGrace = 3 * time.Second
	case c.PresenceGrace < 0:
		c.PresenceGrace = 0
	}
	if c.PresenceStormGrace == 0 {
		c.PresenceStormGrace = 30 * time.Second
	}
	c.PresenceStormGrace = max(c.PresenceStormGrace, c.PresenceGrace)
	if c.RepairMax <= 0 {
		c.RepairMax = 1000
	}
	if c.ReloadAgain <= 0 {
		c.ReloadAgain = 500 * time.Millisecond
	}
	if c.Recorder == nil {
		c.Recorder = discard{}
	}
	if c.FenceAfter == 0 {
		c.FenceAfter = 5 * time.Second
	}
	if c.FenceSpread <= 0 {
		c.FenceSpread = 5 * time.Second
	}
}

// discard is the [kaiwa.Recorder] of a server configured without one.
type discard struct{}

func (discard) Record(kaiwa.Event) {}

// Server is a UA server for one protocol version. It is an http.Handler:
// GET /{version}/ws (and /ws) upgrades to a session; /healthz and /readyz
// answer probes. Its connections must have a file descriptor (TCP or a
// unix socket): TLS ends in front of it, at nginx.
type Server struct {
	cfg   Config
	codec versions.Codec
	log   *slog.Logger
	hub   *hub
	// replays bounds each user's resume replays.
	replays *replayBudget
	met     *metrics
	hookMet *hookMetrics

	mu       sync.Mutex
	sessions map[*session]struct{}
	draining atomic.Bool
	// fenced is set, under mu, while the bus is unreachable past
	// FenceAfter (see fence.go).
	fenced    atomic.Bool
	unfencing atomic.Bool // an unfence is catching up
	stopped   atomic.Bool
	wg        sync.WaitGroup

	tmu     sync.Mutex
	tenants map[kaiwa.TenantID]*tenantState
	ctl     kaiwa.Subscription
	pres    kaiwa.Subscription // presence questions; nil without a PresenceBus
	lim     kaiwa.Subscription // other UAs' admissions; nil without a LimitBus
	limits  *limiter           // nil without a LimitBus
	quit    chan struct{}      // stops the pinger

	// outbox is what every session's outbox shares: the bound in bytes,
	// the write timeout, the closing op a slow consumer gets.
	outbox outbox.Config
}

// New returns a UA server subscribed to tenant-wide live changes.
func New(cfg Config) (*Server, error) {
	s := newServer(cfg)
	sub, err := s.cfg.Bus.SubscribeTenants(s.tenantControl)
	if err != nil {
		return nil, err
	}
	s.ctl = sub
	if s.pres, err = s.servePresence(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	if s.lim, err = s.startLimits(); err != nil {
		_ = sub.Unsubscribe()
		if s.pres != nil {
			_ = s.pres.Unsubscribe()
		}
		if s.lim != nil {
			_ = s.lim.Unsubscribe()
		}
		return nil, err
	}
	s.cfg.Bus.OnReconnect(s.reconnected)
	go s.pinger()
	if p, ok := s.cfg.Bus.(BusPinger); ok && s.cfg.FenceAfter > 0 {
		go s.watchBus(p)
	}
	return s, nil
}

// newServer returns a server that is not yet subscribed to anything.
func newServer(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:      cfg,
		codec:    cfg.Version.Codec,
		log:      cfg.Logger,
		sessions: make(map[*session]struct{}),
		tenants:  make(map[kaiwa.TenantID]*tenantState),
		met:      newMetrics(cfg.Version.Name, cfg.Metrics...),
		quit:     make(chan struct{}),
	}
	s.hub = newHub(s)
	s.hookMet = newHookMetrics(s.met.reg)
	s.replays = newReplayBudget(cfg.MaxReplayPerUserMinute)
	s.outbox = outbox.Config{
		Codec:      s.codec,
		Limit:      cfg.SendQueueBytes,
		Timeout:    cfg.WriteTimeout,
		ReadBuffer: cfg.BufferSize,
		SlowNotice: s.codec.EncodeOp(slowNotice),
	}
	return s
}

// reconnected catches up with what the bus may have carried while its
// connection was down: the tenants' settings and NG lists are loaded
// again (a change may have been missed), and every channel reads the
// messages it may have missed from the stream.
func (s *Server) reconnected() {
	s.tmu.Lock()
	states := make([]*tenantState, 0, len(s.tenants))
	for _, ts := range s.tenants {
		states = append(states, ts)
	}
	s.tmu.Unlock()
	for _, ts := range states {
		go ts.reloadSettings()
		go ts.reloadNG()
	}
	s.hub.recheck()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	case "/metrics":
		s.met.handler.ServeHTTP(w, r)
	case "/debug/pprof/", "/debug/pprof/profile", "/debug/pprof/heap", "/debug/pprof/goroutine",
		"/debug/pprof/allocs", "/debug/pprof/mutex", "/debug/pprof/block", "/debug/pprof/trace":
		// Profiles for operators on the UA's own socket; nginx routes only
		// /{version}/ws here.
		switch r.URL.Path {
		case "/debug/pprof/profile":
			pprof.Profile(w, r)
		case "/debug/pprof/trace":
			pprof.Trace(w, r)
		default:
			pprof.Index(w, r)
		}
	case "/readyz":
		if s.draining.Load() {
			httpError(w, kaiwa.Errorf(kaiwa.CodeUnavailable, "draining"))
			return
		}
		if s.fenced.Load() {
			httpError(w, errFenced)
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	case "/" + s.cfg.Version.Name + "/ws", "/ws":
		s.serveWS(w, r)
	default:
		httpError(w, kaiwa.Errorf(kaiwa.CodeNotFound, "no such endpoint"))
	}
}

// httpStatus maps the codes a UA can refuse an upgrade with to statuses.
var httpStatus = map[kaiwa.Code]int{
	kaiwa.CodeUnauthorized:      http.StatusUnauthorized,
	kaiwa.CodeTokenExpired:      http.StatusUnauthorized,
	kaiwa.CodeForbidden:         http.StatusForbidden,
	kaiwa.CodeBanned:            http.StatusForbidden,
	kaiwa.CodeVersionNotAllowed: http.StatusForbidden,
	kaiwa.CodeNotFound:          http.StatusNotFound,
	kaiwa.CodeRateLimited:       http.StatusTooManyRequests,
	kaiwa.CodeBadRequest:        http.StatusBadRequest,
	kaiwa.CodeUnavailable:       http.StatusServiceUnavailable,
}

// httpError answers a plain HTTP request with the API's error shape.
func httpError(w http.ResponseWriter, err error) {
	code := kaiwa.ErrorCode(err)
	status, ok := httpStatus[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]string{"code": string(code), "message": kaiwa.ErrorMessage(err)},
	})
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		httpError(w, kaiwa.Errorf(kaiwa.CodeUnavailable, "server is draining, reconnect"))
		return
	}
	if s.fenced.Load() {
		httpError(w, errFenced)
		return
	}
	var id *grant
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			httpError(w, kaiwa.Errorf(kaiwa.CodeUnauthorized, "Authorization must be a Bearer token"))
			return
		}
		g, err := s.resolve(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			httpError(w, err)
			return
		}
		id = &g
	}
	ss, err := s.accept(w, r)
	if err != nil {
		return // Accept has answered the request
	}
	if !s.track(ss) {
		ss.closeWith(websocket.StatusGoingAway, "server shutting down")
		ss.wait()
		return
	}
	// The session reads on a goroutine of its own, and this handler returns:
	// the request, its headers and the handler's stack are freed for the
	// session's whole life.
	go ss.serve(id) // untracks the session when it ends
}

// accept upgrades the request to a session, not yet started. On error the
// request has been answered.
func (s *Server) accept(w http.ResponseWriter, r *http.Request) (*session, error) {
	var clock *versions.Clock
	if s.codec.MaxBatch() > 1 {
		clock = versions.NewClock(time.Now()) // only v2 has clocks
	}
	conn, out, err := outbox.Accept(w, r, &websocket.AcceptOptions{
		// Sessions authenticate with a token, never a cookie, so a foreign
		// origin gains nothing; tenants may restrict origins in settings.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	}, &s.outbox, clock)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(s.cfg.ReadLimit)
	ss := newSession(s, conn, out, clock)
	ss.origin = r.Header.Get("Origin")
	return ss, nil
}

// pinger pings every session about once per ping interval, from one
// goroutine for the whole server.
func (s *Server) pinger() {
	every := max(s.cfg.PingInterval/4, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var all []*session
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			s.mu.Lock()
			all = all[:0]
			for ss := range s.sessions {
				all = append(all, ss)
			}
			s.mu.Unlock()
			due := now.Add(-s.cfg.PingInterval).UnixNano()
			for _, ss := range all {
				s.met.peak.observe(ss.out.TakePeak(), now)
				if ss.lastPing.Load() <= due {
					ss.lastPing.Store(now.UnixNano())
					go ss.ping()
				}
			}
			clear(all)
		}
	}
}

// SessionDirectory is a [kaiwa.Directory] that answers everything a new
// session needs (identity, sanctions, member channels) in one request; the
// bus's directory client is one. With a plain Directory the UA asks three
// times.
type SessionDirectory interface {
	ResolveSession(ctx context.Context, token string) (kaiwa.Identity, []kaiwa.Sanction, []string, error)
}

// PlayerSessionDirectory is a [SessionDirectory] that can bring the
// user's own state (blocks, the member channels' unread counts) in the
// same request; the state is nil when it did not.
type PlayerSessionDirectory interface {
	ResolveSessionPlayer(ctx context.Context, token string) (kaiwa.Identity, []kaiwa.Sanction, []string, *kaiwa.PlayerStart, error)
}

// grant is what authenticating a token yields: the identity and, when the
// directory answered them at once, the user's sanctions and channels, and
// perhaps the user's own state.
type grant struct {
	id        kaiwa.Identity
	sanctions []kaiwa.Sanction
	channels  []string
	complete  bool
	player    *kaiwa.PlayerStart
}

// resolve authenticates a token. What the tenant allows (versions,
// origins, bans) is checked once the session is open, so that the client
// learns it from an error op and a close code.
func (s *Server) resolve(ctx context.Context, token string) (grant, error) {
	if token == "" {
		return grant{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "missing token")
	}
	var g grant
	var err error
	if pd, ok := s.cfg.Directory.(PlayerSessionDirectory); ok && s.cfg.Players != nil {
		g.id, g.sanctions, g.channels, g.player, err = pd.ResolveSessionPlayer(ctx, token)
		g.complete = err == nil
	} else if sd, ok := s.cfg.Directory.(SessionDirectory); ok {
		g.id, g.sanctions, g.channels, err = sd.ResolveSession(ctx, token)
		g.complete = err == nil
	} else {
		g.id, err = s.cfg.Directory.ResolveToken(ctx, token)
	}
	if err != nil {
		if c := kaiwa.ErrorCode(err); c == kaiwa.CodeInternal {
			s.log.Error("resolve token", "err", err)
		}
		return grant{}, err
	}
	return g, nil
}

func (s *Server) track(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() || s.fenced.Load() {
		return false
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.met.sessions.Inc()
	return true
}

func (s *Server) untrack(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	s.met.sessions.Dec()
	s.wg.Done()
}

// MetricsHandler returns the handler of the server's /metrics, for a
// listener of its own (Prometheus cannot scrape a unix socket).
func (s *Server) MetricsHandler() http.Handler { return s.met.handler }

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown drains the server: it stops accepting sessions, then asks its
// sessions to reconnect elsewhere, spread evenly over the drain window
// (v2 sessions get reconnect, v1 sessions closing with
// reconnect_after_ms; then close 1001), and waits until they have all
// ended. When ctx ends first, the remaining sessions are closed at once.
// http.Server.Shutdown does not close hijacked connections, so the owner
// calls both.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	all := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	var spacing time.Duration
	if len(all) > 1 {
		spacing = s.cfg.DrainWindow / time.Duration(len(all))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	hurry := false
	for i, ss := range all {
		if i > 0 && spacing > 0 && !hurry {
			timer.Reset(spacing)
			select {
			case <-timer.C:
			case <-ctx.Done():
				hurry = true
			}
		}
		s.drain(ss)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		if s.stopped.CompareAndSwap(false, true) {
			close(s.quit)
		}
		if s.ctl != nil {
			_ = s.ctl.Unsubscribe()
		}
		if s.pres != nil {
			_ = s.pres.Unsubscribe()
		}
		return nil
	case <-ctx.Done():
		return errors.Join(errors.New("ua: sessions still open at shutdown deadline"), ctx.Err())
	}
}

// drain asks one session to reconnect and closes it with 1001.
func (s *Server) drain(ss *session) {
	s.sendAway(ss, "server shutting down", s.cfg.ReconnectAfter)
}

// sendAway asks one session to reconnect after a random wait up to
// spread (v2: reconnect, then closing) and closes it with 1001.
func (s *Server) sendAway(ss *session, reason string, spread time.Duration) {
	after := int(rand.Int64N(int64(spread)+1) / int64(time.Millisecond))
	closing := &versions.OutClosing{
		Op: "closing", Code: int(websocket.StatusGoingAway), Reason: reason, ReconnectAfterMS: after,
	}
	if s.cfg.Version.Resume {
		ss.closeWith(websocket.StatusGoingAway, reason, versions.OutReconnect{Op: "reconnect", AfterMS: after}, closing)
		return
	}
	ss.closeWith(websocket.StatusGoingAway, reason, closing)
}
