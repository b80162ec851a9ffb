// Package signing admits the user tokens a tenant's game server signs
// itself: "TENANT:JWT", verified with golang-jwt against the tenant's
// registered keys ([kaiwa.SigningKey]).
//
// A UA asks the API tier for a tenant's [kaiwa.SigningState] (keys, revoked
// token ids and users, sanctions in force) once, when the tenant's first
// signed token arrives, and then keeps it current from the tenant-wide live
// changes every UA receives: a key added or deleted reloads the state, a
// token id or a user's tokens revoked, a ban or a mute (and their lifting)
// change it in place. A connect with a signed token therefore costs no
// token lookup: the signature, the times, the revocations and the bans are
// checked in the UA. The state is loaded again when the bus reconnects
// (changes may have been missed) and every [Verifier.Refresh].
package signing

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kaiwa-chat/kaiwa"
)

// Source answers a tenant's signing state (the bus's directory client).
type Source interface {
	SigningState(ctx context.Context, t kaiwa.TenantID) (kaiwa.SigningState, error)
}

// Verifier verifies signed tokens against the signing states of the
// tenants it has seen. It is safe for concurrent use.
type Verifier struct {
	src Source
	log *slog.Logger
	// Refresh is how often a tenant's state is loaded again in any case
	// (a safety net under the live changes). Default 5 minutes.
	Refresh time.Duration
	// ReloadAgain is when a state is loaded a second time after a key
	// change, in case the first answer came from a stale cache. Default
	// 500ms.
	ReloadAgain time.Duration
	now         func() time.Time

	mu      sync.Mutex
	tenants map[kaiwa.TenantID]*tenantState
}

// tenantState is one tenant's signing state as the verifier holds it.
type tenantState struct {
	mu       sync.Mutex
	loaded   chan struct{} // closed once the first load ended
	err      error         // the first load's failure; guarded by loaded
	gen      uint64        // live changes applied; guarded by mu
	loadedAt time.Time     // guarded by mu
	loading  bool          // guarded by mu
	keys     map[string]kaiwa.SigningKey
	verifier map[string]any
	revoked  map[string]time.Time // jti → until
	users    map[string]time.Time // user → tokens issued before are revoked
	sanct    map[string][]kaiwa.Sanction
	partial  bool
}

// New returns a verifier loading states from src.
func New(src Source, log *slog.Logger) *Verifier {
	if log == nil {
		log = slog.Default()
	}
	return &Verifier{src: src, log: log, Refresh: 5 * time.Minute, ReloadAgain: 500 * time.Millisecond,
		now: time.Now, tenants: make(map[kaiwa.TenantID]*tenantState)}
}

// Claims are the claims of a signed token: sub (the user), name, join and
// publish (prefix lists, as for registered tokens), exp, iat, jti, and
// optionally tid, which when present must be the tenant the token's
// prefix names.
type Claims struct {
	Name    string   `json:"name,omitempty"`
	Join    []string `json:"join,omitempty"`
	Publish []string `json:"publish,omitempty"`
	Tenant  string   `json:"tid,omitempty"`
	jwt.RegisteredClaims
}

// state returns tenant t's state, loading it when t is new (or its last
// load failed), and starting a reload in the background when it is older
// than Refresh.
func (v *Verifier) state(ctx context.Context, t kaiwa.TenantID) (*tenantState, error) {
	v.mu.Lock()
	ts := v.tenants[t]
	if ts == nil {
		ts = &tenantState{loaded: make(chan struct{})}
		v.tenants[t] = ts
		v.mu.Unlock()
		go v.load(t, ts)
	} else {
		v.mu.Unlock()
	}
	select {
	case <-ts.loaded:
	case <-ctx.Done():
		return nil, kaiwa.Errorf(kaiwa.CodeUnavailable, "signing keys not loaded yet; try again")
	}
	if ts.err != nil {
		v.mu.Lock()
		if v.tenants[t] == ts {
			delete(v.tenants, t) // the next token tries again
		}
		v.mu.Unlock()
		return nil, ts.err
	}
	ts.mu.Lock()
	stale := v.now().Sub(ts.loadedAt) > v.Refresh && !ts.loading
	ts.mu.Unlock()
	if stale {
		go v.load(t, ts)
	}
	return ts, nil
}

// load reads tenant t's state into ts, again when a live change came
// while it read (the answer may predate it).
func (v *Verifier) load(t kaiwa.TenantID, ts *tenantState) {
	ts.mu.Lock()
	if ts.loading {
		ts.mu.Unlock()
		return
	}
	ts.loading = true
	ts.mu.Unlock()
	first := true
	for tries := 0; ; tries++ {
		ts.mu.Lock()
		gen := ts.gen
		ts.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := v.src.SigningState(ctx, t)
		cancel()
		ts.mu.Lock()
		if err == nil {
			ts.set(st)
			ts.loadedAt = v.now()
		} else {
			v.log.Warn("load signing state", "tenant", t, "err", err)
		}
		again := err == nil && ts.gen != gen && tries < 3
		if !again {
			ts.loading = false
		}
		ts.mu.Unlock()
		if first {
			first = false
			select {
			case <-ts.loaded:
			default:
				ts.err = err
				close(ts.loaded)
			}
		}
		if !again {
			return
		}
	}
}

// set replaces the state with st. Call with ts.mu held.
func (ts *tenantState) set(st kaiwa.SigningState) {
	ts.keys = make(map[string]kaiwa.SigningKey, len(st.Keys))
	ts.verifier = make(map[string]any, len(st.Keys))
	for _, k := range st.Keys {
		vk, err := k.Verifier()
		if err != nil {
			continue
		}
		ts.keys[k.Kid], ts.verifier[k.Kid] = k, vk
	}
	ts.revoked = make(map[string]time.Time, len(st.Revoked))
	for _, r := range st.Revoked {
		ts.revoked[r.ID] = r.Until
	}
	ts.users = make(map[string]time.Time, len(st.Users))
	for _, r := range st.Users {
		ts.users[r.User] = r.Since
	}
	ts.sanct = make(map[string][]kaiwa.Sanction)
	for _, s := range st.Sanctions {
		ts.sanct[s.User] = append(ts.sanct[s.User], s)
	}
	ts.partial = st.Partial
}

// Control applies a tenant-wide live change to the state of its tenant,
// when this verifier holds it. Subscribe it to the bus's tenant controls.
func (v *Verifier) Control(c *kaiwa.Control) {
	v.mu.Lock()
	ts := v.tenants[c.Tenant]
	v.mu.Unlock()
	if ts == nil {
		return
	}
	ts.mu.Lock()
	ts.gen++
	if ts.keys == nil { // not loaded yet: the load will read the change
		ts.mu.Unlock()
		return
	}
	switch c.Kind {
	case kaiwa.ControlSigningKeys:
		ts.mu.Unlock()
		go v.load(c.Tenant, ts)
		time.AfterFunc(v.ReloadAgain, func() { v.load(c.Tenant, ts) })
		return
	case kaiwa.ControlTokenIDRevoked:
		if c.Until.After(ts.revoked[c.ID]) {
			ts.revoked[c.ID] = c.Until
		}
	case kaiwa.ControlTokensRevoked:
		since := c.Until
		if since.IsZero() {
			since = v.now()
		}
		if since.After(ts.users[c.User]) {
			ts.users[c.User] = since
		}
	case kaiwa.ControlBan, kaiwa.ControlMute:
		kind := kaiwa.SanctionBan
		if c.Kind == kaiwa.ControlMute {
			kind = kaiwa.SanctionMute
		}
		ts.sanct[c.User] = append(without(ts.sanct[c.User], kind), kaiwa.Sanction{
			Tenant: c.Tenant, User: c.User, Kind: kind, Until: c.Until, Reason: c.Reason, CreatedAt: v.now(),
		})
	case kaiwa.ControlUnban:
		ts.sanct[c.User] = without(ts.sanct[c.User], kaiwa.SanctionBan)
	case kaiwa.ControlUnmute:
		ts.sanct[c.User] = without(ts.sanct[c.User], kaiwa.SanctionMute)
	}
	if len(ts.sanct[c.User]) == 0 {
		delete(ts.sanct, c.User)
	}
	ts.mu.Unlock()
}

// without returns list without its sanctions of kind.
func without(list []kaiwa.Sanction, kind kaiwa.SanctionKind) []kaiwa.Sanction {
	out := list[:0:0]
	for _, s := range list {
		if s.Kind != kind {
			out = append(out, s)
		}
	}
	return out
}

// Reload loads every state again: after the bus reconnected, live
// changes may have been missed.
func (v *Verifier) Reload() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for t, ts := range v.tenants {
		go v.load(t, ts)
	}
}

// Verify checks the signed token jwtText of tenant t and returns its
// identity and, when the state knows all of the tenant's sanctions, the
// user's sanctions in force (complete true). Refusals are
// [kaiwa.CodeUnauthorized] (a bad or unknown signature, key, algorithm or
// claim, a revoked token), or [kaiwa.CodeTokenExpired].
func (v *Verifier) Verify(ctx context.Context, t kaiwa.TenantID, jwtText string) (kaiwa.Identity, []kaiwa.Sanction, bool, error) {
	ts, err := v.state(ctx, t)
	if err != nil {
		return kaiwa.Identity{}, nil, false, err
	}
	now := v.now()
	var claims Claims
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{kaiwa.AlgHS256, kaiwa.AlgEdDSA, kaiwa.AlgES256}),
		jwt.WithLeeway(kaiwa.ClockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	_, err = parser.ParseWithClaims(jwtText, &claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		ts.mu.Lock()
		defer ts.mu.Unlock()
		k, ok := ts.keys[kid]
		if !ok {
			return nil, errUnknownKey
		}
		// The key's algorithm, never the token's choice, decides.
		if tok.Method.Alg() != k.Alg {
			return nil, errWrongAlg
		}
		return ts.verifier[kid], nil
	})
	if err != nil {
		return kaiwa.Identity{}, nil, false, refusal(err)
	}
	id, err := identity(t, claims)
	if err != nil {
		return kaiwa.Identity{}, nil, false, err
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if until, ok := ts.revoked[id.TokenID]; ok && now.Before(until) {
		return kaiwa.Identity{}, nil, false, kaiwa.Errorf(kaiwa.CodeUnauthorized, "token revoked")
	}
	if since, ok := ts.users[id.User]; ok && claims.IssuedAt.Time.Before(since) {
		return kaiwa.Identity{}, nil, false, kaiwa.Errorf(kaiwa.CodeUnauthorized, "token revoked")
	}
	var inForce []kaiwa.Sanction
	for _, s := range ts.sanct[id.User] {
		if s.Active(now) {
			inForce = append(inForce, s)
		}
	}
	return id, inForce, !ts.partial, nil
}

var (
	errUnknownKey = errors.New("signing: unknown kid")
	errWrongAlg   = errors.New("signing: algorithm not the key's")
)

// refusal maps a parse failure to the contract's codes.
func refusal(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return kaiwa.Errorf(kaiwa.CodeTokenExpired, "token expired")
	case errors.Is(err, errUnknownKey):
		return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token: unknown signing key (kid)")
	case errors.Is(err, errWrongAlg), errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token: algorithm not allowed for this key")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token: bad signature")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token: issued in the future")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token: exp is required")
	}
	return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
}

// identity checks the claims of a verified token and returns the identity
// they grant.
func identity(t kaiwa.TenantID, c Claims) (kaiwa.Identity, error) {
	bad := func(format string, args ...any) error {
		return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token: "+format, args...)
	}
	if c.Tenant != "" && c.Tenant != string(t) {
		return kaiwa.Identity{}, bad("tid is another tenant")
	}
	if c.IssuedAt == nil {
		return kaiwa.Identity{}, bad("iat is required")
	}
	if c.ID == "" || len(c.ID) > kaiwa.MaxTokenIDLen {
		return kaiwa.Identity{}, bad("jti is required, at most %d characters", kaiwa.MaxTokenIDLen)
	}
	name := c.Name
	if name == "" {
		name = c.Subject
	}
	req := kaiwa.TokenRequest{User: c.Subject, Name: name, TTL: c.ExpiresAt.Sub(c.IssuedAt.Time), Join: c.Join, Publish: c.Publish}
	if req.TTL <= 0 {
		req.TTL = time.Second // expired tokens were refused already
	}
	if err := req.Check(); err != nil {
		return kaiwa.Identity{}, bad("%s", kaiwa.ErrorMessage(err))
	}
	return kaiwa.Identity{
		Tenant: t, User: c.Subject, Name: name, ExpiresAt: c.ExpiresAt.Time,
		Join: c.Join, Publish: c.Publish, TokenID: c.ID,
	}, nil
}

// Directory is a UA's directory that admits signed tokens itself and asks
// the wrapped directory for everything else. A signed token's session
// still asks for the user's member channels (one request, answered from
// the API tier's cache), and for its sanctions only when the tenant has
// more than the state carries.
type Directory struct {
	kaiwa.Directory
	V *Verifier
}

// sessionDirectory is the UA's one-request session lookup (ua.SessionDirectory).
type sessionDirectory interface {
	ResolveSession(ctx context.Context, token string) (kaiwa.Identity, []kaiwa.Sanction, []string, error)
}

// playerDirectory is the session lookup that brings the user's own state
// too (ua.PlayerSessionDirectory).
type playerDirectory interface {
	ResolveSessionPlayer(ctx context.Context, token string) (kaiwa.Identity, []kaiwa.Sanction, []string, *kaiwa.PlayerStart, error)
}

// ResolveSessionPlayer is [Directory.ResolveSession] with the user's own
// state (blocks, unread counts) when the directory brings it with a
// registered token's lookup; for a signed token, and a directory that
// cannot, the state is nil and the UA asks for it apart.
func (d Directory) ResolveSessionPlayer(ctx context.Context, token string) (kaiwa.Identity, []kaiwa.Sanction, []string, *kaiwa.PlayerStart, error) {
	if _, _, signed := kaiwa.IsSignedToken(token); !signed {
		if pd, ok := d.Directory.(playerDirectory); ok {
			return pd.ResolveSessionPlayer(ctx, token)
		}
	}
	id, sanctions, chs, err := d.ResolveSession(ctx, token)
	return id, sanctions, chs, nil, err
}

// ResolveToken implements [kaiwa.Directory].
func (d Directory) ResolveToken(ctx context.Context, token string) (kaiwa.Identity, error) {
	if t, jwtText, ok := kaiwa.IsSignedToken(token); ok {
		id, _, _, err := d.V.Verify(ctx, t, jwtText)
		return id, err
	}
	return d.Directory.ResolveToken(ctx, token)
}

// ResolveSession answers everything a new session needs: for a signed
// token from the verifier (and the user's member channels from the
// directory), for a registered one from the directory.
func (d Directory) ResolveSession(ctx context.Context, token string) (kaiwa.Identity, []kaiwa.Sanction, []string, error) {
	t, jwtText, ok := kaiwa.IsSignedToken(token)
	if !ok {
		if sd, ok := d.Directory.(sessionDirectory); ok {
			return sd.ResolveSession(ctx, token)
		}
		id, err := d.Directory.ResolveToken(ctx, token)
		if err != nil {
			return id, nil, nil, err
		}
		sanctions, err := d.Directory.Sanctions(ctx, id.Tenant, id.User)
		if err != nil {
			return id, nil, nil, err
		}
		chs, err := d.Directory.MemberChannels(ctx, id.Tenant, id.User)
		return id, sanctions, chs, err
	}
	id, sanctions, complete, err := d.V.Verify(ctx, t, jwtText)
	if err != nil {
		return kaiwa.Identity{}, nil, nil, err
	}
	if !complete {
		if sanctions, err = d.Directory.Sanctions(ctx, t, id.User); err != nil {
			return kaiwa.Identity{}, nil, nil, err
		}
	}
	chs, err := d.Directory.MemberChannels(ctx, t, id.User)
	if err != nil {
		return kaiwa.Identity{}, nil, nil, err
	}
	return id, sanctions, chs, nil
}

// Remote is a directory that also answers signing state (the bus's
// directory client).
type Remote interface {
	kaiwa.Directory
	Source
}

// Attach returns a [Directory] over remote whose verifier follows the
// tenants' live changes on b (and loads every state again when b
// reconnects); the subscription ends with the returned one.
func Attach(remote Remote, b kaiwa.Bus, log *slog.Logger) (Directory, kaiwa.Subscription, error) {
	v := New(remote, log)
	sub, err := b.SubscribeTenants(v.Control)
	if err != nil {
		return Directory{}, nil, err
	}
	b.OnReconnect(v.Reload)
	return Directory{Directory: remote, V: v}, sub, nil
}
