package ua

import (
	"context"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// BusPinger is a [kaiwa.Bus] that can tell whether its connection works
// (the bus package's does: a round trip to the NATS server). A server
// whose Bus is one fences itself when the bus stays unreachable for
// [Config.FenceAfter]:
//
//   - every session is asked to reconnect elsewhere: v2 gets reconnect,
//     then closing; v1 gets closing; both with a random reconnect_after_ms
//     up to [Config.FenceSpread], then close 1001;
//   - new sessions are refused with 503 unavailable, so nginx passes the
//     upgrade to another UA (proxy_next_upstream http_503);
//   - /readyz answers 503.
//
// A server cut off from the bus would otherwise keep sessions that hear
// nothing of their channels and whose sends fail, while UAs on other
// hosts carry on. Once the bus answers again the server reads from the
// stream what its channels missed meanwhile, then accepts sessions again.
type BusPinger interface {
	Ping(ctx context.Context) error
}

// errFenced is what a fenced server answers upgrades and /readyz with.
var errFenced = kaiwa.Errorf(kaiwa.CodeUnavailable, "server lost the message bus, reconnect")

// watchBus pings the bus until the server stops, fencing the server when
// no ping has succeeded for FenceAfter and unfencing it at the first
// success after that.
func (s *Server) watchBus(p BusPinger) {
	every := min(max(s.cfg.FenceAfter/5, 20*time.Millisecond), time.Second)
	timeout := min(max(s.cfg.FenceAfter/2, 20*time.Millisecond), 2*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := p.Ping(ctx)
		cancel()
		now := time.Now()
		switch {
		case err == nil:
			lastOK = now
			if s.fenced.Load() && s.unfencing.CompareAndSwap(false, true) {
				go s.unfence()
			}
		case !s.fenced.Load() && now.Sub(lastOK) >= s.cfg.FenceAfter:
			s.fence(now.Sub(lastOK), err)
		}
	}
}

// fence asks every session to reconnect elsewhere and refuses new ones
// until [Server.unfence].
func (s *Server) fence(down time.Duration, cause error) {
	s.mu.Lock()
	if s.draining.Load() || s.fenced.Load() {
		s.mu.Unlock()
		return
	}
	s.fenced.Store(true)
	all := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	s.met.fenced.Set(1)
	s.met.fences.Inc()
	s.log.Warn("fenced: the message bus is unreachable; sessions sent elsewhere, new ones refused",
		"unreachable_for", down.Round(time.Millisecond).String(), "sessions", len(all), "err", cause)
	for _, ss := range all {
		s.sendAway(ss, "server lost the message bus", s.cfg.FenceSpread)
	}
}

// unfence runs when the bus answers again: the channels read what they
// missed from the stream (and the tenants' settings and NG lists are
// loaded again), then the server accepts sessions.
func (s *Server) unfence() {
	defer s.unfencing.Store(false)
	began := time.Now()
	s.reconnected()
	s.mu.Lock()
	s.fenced.Store(false)
	s.mu.Unlock()
	s.met.fenced.Set(0)
	s.log.Info("unfenced: the message bus answers again; accepting sessions",
		"caught_up_in", time.Since(began).Round(time.Millisecond).String())
}

// Fenced reports whether the server is fenced: the bus has been
// unreachable past [Config.FenceAfter] and sessions are refused.
func (s *Server) Fenced() bool { return s.fenced.Load() }

// Draining reports whether [Server.Shutdown] has begun.
func (s *Server) Draining() bool { return s.draining.Load() }
