package ua

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// Matcher applies a tenant's NG list to a message (package tenants/ngword
// provides one; see [Config.CompileNG]). It must be safe for concurrent use.
type Matcher interface {
	// Apply applies the policy: under [kaiwa.NGMask] it returns text with
	// its NG words masked, otherwise a [kaiwa.CodeNGWord] error when text
	// holds one. hit reports whether it found any.
	Apply(text, policy string) (out string, hit bool, err error)
}

// tenantState is what the sessions of one tenant on this server share: the
// tenant's settings and NG matcher, kept current by live changes, and the
// NG-word hits of its users for escalation.
type tenantState struct {
	srv  *Server
	id   kaiwa.TenantID
	refs int // sessions holding it; guarded by srv.tmu

	settings atomic.Pointer[kaiwa.Settings]
	ngMu     sync.Mutex // serialises NG list loads
	ng       atomic.Pointer[ngState]

	hitMu sync.Mutex
	hits  map[string][]time.Time // user → recent NG hits
}

// ngState is a loaded NG list: its policy and matcher (nil when empty).
type ngState struct {
	policy string
	m      Matcher
}

// acquireTenant returns the shared state of tenant t, loading its settings
// and NG list when no session of t is here yet. Both are then kept current
// by live changes, so the tenant's sessions go on chatting while the
// directory is unreachable.
func (s *Server) acquireTenant(ctx context.Context, t kaiwa.TenantID) (*tenantState, error) {
	s.tmu.Lock()
	ts := s.tenants[t]
	if ts != nil {
		ts.refs++
		s.tmu.Unlock()
		return ts, nil
	}
	s.tmu.Unlock()
	st, err := s.cfg.Directory.TenantSettings(ctx, t)
	if err != nil {
		return nil, err
	}
	st = st.WithDefaults()
	fresh := &tenantState{srv: s, id: t, hits: make(map[string][]time.Time)}
	fresh.settings.Store(&st)
	if s.cfg.CompileNG != nil {
		fresh.ngMu.Lock()
		err := fresh.loadNG(ctx)
		fresh.ngMu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if ts = s.tenants[t]; ts == nil {
		ts = fresh
		s.tenants[t] = ts
	}
	ts.refs++
	return ts, nil
}

func (s *Server) releaseTenant(ts *tenantState) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	ts.refs--
	if ts.refs == 0 && s.tenants[ts.id] == ts {
		delete(s.tenants, ts.id)
	}
}

func (s *Server) lookupTenant(t kaiwa.TenantID) *tenantState {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	return s.tenants[t]
}

// tenantControl applies tenant-wide live changes.
func (s *Server) tenantControl(c *kaiwa.Control) {
	ts := s.lookupTenant(c.Tenant)
	if ts == nil {
		return // no session of this tenant here
	}
	switch c.Kind {
	case kaiwa.ControlSettings:
		go ts.reloadSettings()
	case kaiwa.ControlNGWords:
		// Reload now, and once more shortly after: an API process whose
		// cache had not yet heard of the change may answer the first load.
		go ts.reloadNG()
		time.AfterFunc(s.cfg.ReloadAgain, ts.reloadNG)
	case kaiwa.ControlTokenIDRevoked:
		s.closeTokenID(c.Tenant, c.ID)
	}
}

func (ts *tenantState) Settings() kaiwa.Settings { return *ts.settings.Load() }

func (ts *tenantState) reloadSettings() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := ts.srv.cfg.Directory.TenantSettings(ctx, ts.id)
	if err != nil {
		ts.srv.log.Warn("reload settings", "tenant", ts.id, "err", err)
		return
	}
	st = st.WithDefaults()
	ts.settings.Store(&st)
}

func (ts *tenantState) reloadNG() {
	if ts.srv.stopped.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.ngMu.Lock()
	defer ts.ngMu.Unlock()
	if err := ts.loadNG(ctx); err != nil {
		ts.srv.log.Warn("reload NG list", "tenant", ts.id, "err", err)
	}
}

// loadNG fetches and compiles the NG list. Call with ngMu held.
func (ts *tenantState) loadNG(ctx context.Context) error {
	l, err := ts.srv.cfg.Directory.NGList(ctx, ts.id)
	if err != nil {
		return err
	}
	st := &ngState{policy: l.Policy}
	if st.policy == "" {
		st.policy = ts.Settings().NGPolicy
	}
	if len(l.Words) > 0 && ts.srv.cfg.CompileNG != nil {
		m, err := ts.srv.cfg.CompileNG(l)
		if err != nil {
			return err
		}
		st.m = m
	}
	ts.ng.Store(st)
	return nil
}

// matcher returns the tenant's NG state, loading it on first use.
func (ts *tenantState) matcher(ctx context.Context) (*ngState, error) {
	if st := ts.ng.Load(); st != nil {
		return st, nil
	}
	ts.ngMu.Lock()
	defer ts.ngMu.Unlock()
	if st := ts.ng.Load(); st != nil {
		return st, nil
	}
	if err := ts.loadNG(ctx); err != nil {
		return nil, err
	}
	return ts.ng.Load(), nil
}

// ngHit records an NG-word hit of user and reports whether it reaches the
// tenant's escalation threshold (the count restarts then).
func (ts *tenantState) ngHit(user string, now time.Time) bool {
	st := ts.Settings()
	if st.NGEscalateHits <= 0 {
		return false
	}
	window := time.Duration(st.NGEscalateWindowS) * time.Second
	ts.hitMu.Lock()
	defer ts.hitMu.Unlock()
	hits := ts.hits[user]
	keep := hits[:0]
	for _, h := range hits {
		if now.Sub(h) < window {
			keep = append(keep, h)
		}
	}
	keep = append(keep, now)
	if len(keep) >= st.NGEscalateHits {
		delete(ts.hits, user)
		return true
	}
	ts.hits[user] = keep
	if len(ts.hits) > 100000 { // bound the map: forget the oldest entries
		for u := range ts.hits {
			delete(ts.hits, u)
			if len(ts.hits) <= 50000 {
				break
			}
		}
	}
	return false
}

// allowsVersion reports whether the tenant's settings let its clients use
// version v.
func allowsVersion(st kaiwa.Settings, v string) bool {
	return len(st.AllowedVersions) == 0 || slices.Contains(st.AllowedVersions, v)
}

// allowsOrigin reports whether a browser Origin is allowed by the tenant's
// patterns: "https://game.example.com", "https://*.example.com" (any
// subdomain) or, without a scheme, any scheme. Clients that send no Origin
// (native games) always are.
func allowsOrigin(st kaiwa.Settings, origin string) bool {
	if origin == "" || len(st.AllowedOrigins) == 0 {
		return true
	}
	scheme, host, ok := strings.Cut(strings.ToLower(origin), "://")
	if !ok {
		return false
	}
	for _, p := range st.AllowedOrigins {
		p = strings.ToLower(p)
		pscheme, phost, hasScheme := strings.Cut(p, "://")
		if !hasScheme {
			pscheme, phost = "", p
		}
		if hasScheme && pscheme != scheme {
			continue
		}
		if sub, wild := strings.CutPrefix(phost, "*."); wild {
			if strings.HasSuffix(host, "."+sub) {
				return true
			}
		} else if host == phost {
			return true
		}
	}
	return false
}
