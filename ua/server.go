package ua

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// Config holds a UA server's dependencies and tunables. Zero tunables take
// the defaults noted.
type Config struct {
	// Version is the protocol version this server speaks.
	Version versions.Version
	// Directory answers token, channel and membership questions.
	Directory kaiwa.Directory
	// Bus carries messages, presence and live changes.
	Bus    kaiwa.Bus
	Logger *slog.Logger

	// SendQueue is each session's queue, in ops. Default 256.
	SendQueue int
	// PingInterval between WebSocket pings; a session that answers none for
	// two intervals is closed. Default 25s.
	PingInterval time.Duration
	// AuthTimeout is how long a client has to send its auth frame. Default 10s.
	AuthTimeout time.Duration
	// WriteTimeout bounds one frame's write. Default 10s.
	WriteTimeout time.Duration
	// MaxFrame is the largest frame answered normally; larger ones (up to
	// ReadLimit) get too_large. Default 16 KiB.
	MaxFrame int
	// ReadLimit is the largest frame read at all; a larger one closes the
	// session with 1009. Default 64 KiB.
	ReadLimit int64
	// AbuseLimit refused ops within AbuseWindow close the session with 4029.
	// Defaults 50 and 10s.
	AbuseLimit  int
	AbuseWindow time.Duration
	// ReconnectAfter is the base delay clients are told to wait before
	// reconnecting after a shutdown; each gets a random share of it as
	// jitter. Default 2s.
	ReconnectAfter time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
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
	if c.AbuseLimit <= 0 {
		c.AbuseLimit = 50
	}
	if c.AbuseWindow <= 0 {
		c.AbuseWindow = 10 * time.Second
	}
	if c.ReconnectAfter <= 0 {
		c.ReconnectAfter = 2 * time.Second
	}
}

// Server is a UA server for one protocol version. It is an http.Handler:
// GET /{version}/ws (and /ws) upgrades to a session; /healthz and /readyz
// answer probes.
type Server struct {
	cfg   Config
	codec versions.Codec
	log   *slog.Logger
	hub   *hub

	mu       sync.Mutex
	sessions map[*session]struct{}
	draining atomic.Bool
	wg       sync.WaitGroup
}

// New returns a UA server.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:      cfg,
		codec:    cfg.Version.Codec,
		log:      cfg.Logger,
		sessions: make(map[*session]struct{}),
	}
	s.hub = newHub(s)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	case "/readyz":
		if s.draining.Load() {
			httpError(w, kaiwa.Errorf(kaiwa.CodeUnavailable, "draining"))
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
	var id *kaiwa.Identity
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			httpError(w, kaiwa.Errorf(kaiwa.CodeUnauthorized, "Authorization must be a Bearer token"))
			return
		}
		ident, err := s.resolve(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			httpError(w, err)
			return
		}
		id = &ident
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Sessions authenticate with a token, never a cookie, so a foreign
		// origin gains nothing; tenants may restrict origins in settings.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept has answered the request
	}
	conn.SetReadLimit(s.cfg.ReadLimit)
	ss := newSession(s, conn)
	if !s.track(ss) {
		ss.closeWith(websocket.StatusGoingAway, "server shutting down", nil)
		ss.wait()
		return
	}
	defer s.untrack(ss)
	ss.serve(id)
}

// resolve authenticates a token and checks the tenant may use this version.
func (s *Server) resolve(ctx context.Context, token string) (kaiwa.Identity, error) {
	if token == "" {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "missing token")
	}
	id, err := s.cfg.Directory.ResolveToken(ctx, token)
	if err != nil {
		if c := kaiwa.ErrorCode(err); c == kaiwa.CodeInternal {
			s.log.Error("resolve token", "err", err)
		}
		return kaiwa.Identity{}, err
	}
	if !s.cfg.Version.Allows(id.Tenant) {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeVersionNotAllowed, "protocol version %s is not available to this title", s.cfg.Version.Name)
	}
	return id, nil
}

func (s *Server) track(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	s.wg.Done()
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown stops accepting sessions, tells every session to reconnect
// (closing, then close 1001), and waits until they have all ended or ctx
// is done. http.Server.Shutdown does not close hijacked connections, so the
// owner calls both.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	all := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	base := s.cfg.ReconnectAfter
	for _, ss := range all {
		after := base/2 + time.Duration(rand.Int64N(int64(base)))
		ss.closeWith(websocket.StatusGoingAway, "server shutting down", &versions.OutClosing{
			Op: "closing", Code: int(websocket.StatusGoingAway), Reason: "server shutting down",
			ReconnectAfterMS: int(after / time.Millisecond),
		})
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.Join(errors.New("ua: sessions still open at shutdown deadline"), ctx.Err())
	}
}
