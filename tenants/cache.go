package tenants

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

var _ kaiwa.Directory = (*Cache)(nil)

// DefaultCacheEntries is the default bound of a [Cache].
const DefaultCacheEntries = 10000

// Cache is a short-lived cache in front of a [kaiwa.Directory], used by the
// API tier when it answers the UAs' lookups. It keeps successful results
// only (errors always reach the directory again) for at most its TTL, and a
// token's identity no longer than the token lives: a cached identity whose
// token has expired answers [kaiwa.CodeTokenExpired].
//
// Whoever changes what the directory knows calls [Cache.Invalidate],
// [Cache.InvalidateUser], [Cache.InvalidateChannel] or [Cache.InvalidateNG],
// so that the process that made a change never serves the old value. Other
// processes serve it for at most the TTL. A cached sanction that ends is
// no longer returned, whatever the TTL.
//
// A Cache is safe for concurrent use. When it holds more than MaxEntries
// entries, it drops expired ones and then arbitrary ones.
type Cache struct {
	d   kaiwa.Directory
	ttl time.Duration

	// MaxEntries bounds the number of entries (DefaultCacheEntries unless
	// changed). Set it before the Cache is shared.
	MaxEntries int

	now func() time.Time

	mu      sync.Mutex
	tenants map[kaiwa.TenantID]map[cacheKey]cacheEntry
	n       int // entries over all tenants
	// gen counts invalidations: a lookup stores its result only when no
	// invalidation happened while it asked the directory.
	gen uint64
}

// The kinds of cached lookups.
const (
	kindToken          = iota + 1 // a: token hash; value kaiwa.Identity
	kindSettings                  // value kaiwa.Settings
	kindChannel                   // a: channel; value kaiwa.Channel
	kindMember                    // a: channel, b: user; value bool
	kindMemberChannels            // a: user; value []string
	kindNGList                    // value kaiwa.NGList
	kindSanctions                 // a: user; value []kaiwa.Sanction
	kindAPIKey                    // a: key hash; value kaiwa.TenantID
)

type cacheKey struct {
	kind int
	a, b string
}

type cacheEntry struct {
	val     any
	expires time.Time
}

// NewCache returns a cache in front of d whose entries live for ttl.
func NewCache(d kaiwa.Directory, ttl time.Duration) *Cache {
	return &Cache{
		d:          d,
		ttl:        ttl,
		MaxEntries: DefaultCacheEntries,
		now:        time.Now,
		tenants:    make(map[kaiwa.TenantID]map[cacheKey]cacheEntry),
	}
}

// get returns the live entry of (tenant, k) and the current generation.
func (c *Cache) get(tenant kaiwa.TenantID, k cacheKey) (any, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tenants[tenant][k]
	if ok && !c.now().Before(e.expires) {
		c.deleteLocked(tenant, k)
		ok = false
	}
	return e.val, ok, c.gen
}

// put stores v under (tenant, k) until expires, unless an invalidation
// happened since generation gen.
func (c *Cache) put(tenant kaiwa.TenantID, k cacheKey, v any, expires time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	m := c.tenants[tenant]
	if m == nil {
		m = make(map[cacheKey]cacheEntry)
		c.tenants[tenant] = m
	}
	if _, ok := m[k]; !ok {
		c.n++
	}
	m[k] = cacheEntry{val: v, expires: expires}
	if c.n > c.maxEntries() {
		c.evictLocked()
	}
}

func (c *Cache) maxEntries() int {
	if c.MaxEntries <= 0 {
		return DefaultCacheEntries
	}
	return c.MaxEntries
}

func (c *Cache) deleteLocked(tenant kaiwa.TenantID, k cacheKey) {
	m := c.tenants[tenant]
	if _, ok := m[k]; !ok {
		return
	}
	delete(m, k)
	c.n--
	if len(m) == 0 {
		delete(c.tenants, tenant)
	}
}

// evictLocked drops expired entries, then arbitrary ones (map order) until
// the cache is at 90% of its bound, so that eviction runs rarely.
func (c *Cache) evictLocked() {
	now := c.now()
	for t, m := range c.tenants {
		for k, e := range m {
			if !now.Before(e.expires) {
				c.deleteLocked(t, k)
			}
		}
	}
	target := c.maxEntries() * 9 / 10
	for t, m := range c.tenants {
		for k := range m {
			if c.n <= target {
				return
			}
			c.deleteLocked(t, k)
		}
	}
}

// Len returns the number of entries held, expired ones included.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Invalidate drops everything cached about the tenant.
func (c *Cache) Invalidate(tenant kaiwa.TenantID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.n -= len(c.tenants[tenant])
	delete(c.tenants, tenant)
}

// InvalidateUser drops what is cached about one user of the tenant: the
// identities of the user's tokens, the user's memberships and sanctions.
func (c *Cache) InvalidateUser(tenant kaiwa.TenantID, user string) {
	c.invalidateWhere(tenant, func(k cacheKey, e cacheEntry) bool {
		switch k.kind {
		case kindToken:
			return e.val.(kaiwa.Identity).User == user
		case kindMember:
			return k.b == user
		case kindMemberChannels, kindSanctions:
			return k.a == user
		}
		return false
	})
}

// InvalidateNG drops the tenant's cached NG list, and its settings, which
// hold the NG policy.
func (c *Cache) InvalidateNG(tenant kaiwa.TenantID) {
	c.invalidateWhere(tenant, func(k cacheKey, _ cacheEntry) bool {
		return k.kind == kindNGList || k.kind == kindSettings
	})
}

// InvalidateChannel drops what is cached about one channel of the tenant:
// the channel and its memberships. Users' channel lists are dropped too,
// since they may name it.
func (c *Cache) InvalidateChannel(tenant kaiwa.TenantID, ch string) {
	c.invalidateWhere(tenant, func(k cacheKey, _ cacheEntry) bool {
		switch k.kind {
		case kindChannel, kindMember:
			return k.a == ch
		case kindMemberChannels:
			return true
		}
		return false
	})
}

func (c *Cache) invalidateWhere(tenant kaiwa.TenantID, drop func(cacheKey, cacheEntry) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.tenants[tenant] {
		if drop(k, e) {
			c.deleteLocked(tenant, k)
		}
	}
}

// ResolveToken returns the identity of a token, from the cache when a
// lookup succeeded within the TTL and the token has not expired since.
func (c *Cache) ResolveToken(ctx context.Context, token string) (kaiwa.Identity, error) {
	tenant, ok := kaiwa.CredentialTenant(token)
	if !ok {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
	}
	k := cacheKey{kind: kindToken, a: kaiwa.HashCredential(token)}
	v, hit, gen := c.get(tenant, k)
	if hit {
		id := v.(kaiwa.Identity)
		if !c.now().Before(id.ExpiresAt) {
			return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeTokenExpired, "token expired")
		}
		return cloneIdentity(id), nil
	}
	id, err := c.d.ResolveToken(ctx, token)
	if err != nil {
		return kaiwa.Identity{}, err
	}
	expires := c.now().Add(c.ttl)
	if id.ExpiresAt.Before(expires) {
		expires = id.ExpiresAt
	}
	c.put(tenant, k, cloneIdentity(id), expires, gen)
	return id, nil
}

func cloneIdentity(id kaiwa.Identity) kaiwa.Identity {
	id.Join = slices.Clone(id.Join)
	id.Publish = slices.Clone(id.Publish)
	return id
}

// lookup returns the cached value of (tenant, k) or asks fetch and caches
// its result for the TTL. clone copies values that share memory.
func lookup[T any](ctx context.Context, c *Cache, tenant kaiwa.TenantID, k cacheKey, clone func(T) T,
	fetch func(context.Context) (T, error)) (T, error) {
	cached, hit, gen := c.get(tenant, k)
	if hit {
		return clone(cached.(T)), nil
	}
	v, err := fetch(ctx)
	if err != nil {
		return v, err
	}
	c.put(tenant, k, clone(v), c.now().Add(c.ttl), gen)
	return v, nil
}

func same[T any](v T) T { return v }

// CachedKeys is a [kaiwa.TenantStore] whose AuthenticateKey answers from
// Cache: a key found valid is taken as valid for the cache's TTL without
// asking the store again (a refused key is always asked again). The
// process that revokes a key or disables a tenant drops the tenant's
// entries at once (through [Cache.Invalidate] on [kaiwa.ControlKeys]);
// another process refuses the key within the TTL.
type CachedKeys struct {
	kaiwa.TenantStore
	Cache *Cache
}

// AuthenticateKey implements [kaiwa.TenantStore], cached.
func (k CachedKeys) AuthenticateKey(ctx context.Context, apiKey string) (kaiwa.TenantID, error) {
	tenant, ok := kaiwa.CredentialTenant(apiKey)
	if !ok {
		return "", kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid api key")
	}
	return lookup(ctx, k.Cache, tenant, cacheKey{kind: kindAPIKey, a: kaiwa.HashCredential(apiKey)}, same,
		func(ctx context.Context) (kaiwa.TenantID, error) { return k.TenantStore.AuthenticateKey(ctx, apiKey) })
}

// TenantSettings returns the tenant's settings, cached.
func (c *Cache) TenantSettings(ctx context.Context, tenant kaiwa.TenantID) (kaiwa.Settings, error) {
	return lookup(ctx, c, tenant, cacheKey{kind: kindSettings}, same, func(ctx context.Context) (kaiwa.Settings, error) {
		return c.d.TenantSettings(ctx, tenant)
	})
}

// Channel returns a channel, cached; a missing channel is asked again.
func (c *Cache) Channel(ctx context.Context, tenant kaiwa.TenantID, ch string) (kaiwa.Channel, error) {
	return lookup(ctx, c, tenant, cacheKey{kind: kindChannel, a: ch}, same, func(ctx context.Context) (kaiwa.Channel, error) {
		return c.d.Channel(ctx, tenant, ch)
	})
}

// IsMember reports whether user is a member of ch, cached.
func (c *Cache) IsMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) (bool, error) {
	return lookup(ctx, c, tenant, cacheKey{kind: kindMember, a: ch, b: user}, same, func(ctx context.Context) (bool, error) {
		return c.d.IsMember(ctx, tenant, ch, user)
	})
}

// MemberChannels lists the channels user is a member of, cached. The
// caller owns the returned slice.
func (c *Cache) MemberChannels(ctx context.Context, tenant kaiwa.TenantID, user string) ([]string, error) {
	return lookup(ctx, c, tenant, cacheKey{kind: kindMemberChannels, a: user}, slices.Clone[[]string], func(ctx context.Context) ([]string, error) {
		return c.d.MemberChannels(ctx, tenant, user)
	})
}

// NGList returns the tenant's NG list, cached. The caller owns the
// returned slices.
func (c *Cache) NGList(ctx context.Context, tenant kaiwa.TenantID) (kaiwa.NGList, error) {
	return lookup(ctx, c, tenant, cacheKey{kind: kindNGList}, cloneNGList, func(ctx context.Context) (kaiwa.NGList, error) {
		return c.d.NGList(ctx, tenant)
	})
}

func cloneNGList(l kaiwa.NGList) kaiwa.NGList {
	l.Words = slices.Clone(l.Words)
	l.Allow = slices.Clone(l.Allow)
	return l
}

// Sanctions returns the user's sanctions in force, cached: a cached
// sanction whose end has passed is left out. The caller owns the returned
// slice.
func (c *Cache) Sanctions(ctx context.Context, tenant kaiwa.TenantID, user string) ([]kaiwa.Sanction, error) {
	list, err := lookup(ctx, c, tenant, cacheKey{kind: kindSanctions, a: user}, slices.Clone[[]kaiwa.Sanction],
		func(ctx context.Context) ([]kaiwa.Sanction, error) {
			return c.d.Sanctions(ctx, tenant, user)
		})
	if err != nil {
		return nil, err
	}
	now := c.now()
	return slices.DeleteFunc(list, func(s kaiwa.Sanction) bool { return !s.Active(now) }), nil
}

var _ kaiwa.SessionResolver = (*Cache)(nil)

// ResolveSessions implements [kaiwa.SessionResolver]: tokens whose
// identity, sanctions and channels are all cached are answered from the
// cache; the rest go to the directory together (in one batch when it is a
// SessionResolver itself) and their answers are cached.
func (c *Cache) ResolveSessions(ctx context.Context, tokens []string) []kaiwa.SessionInfo {
	out := make([]kaiwa.SessionInfo, len(tokens))
	var miss []int
	for i, tok := range tokens {
		if info, ok := c.cachedSession(tok); ok {
			out[i] = info
		} else {
			miss = append(miss, i)
		}
	}
	if len(miss) == 0 {
		return out
	}
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	asked := make([]string, len(miss))
	for j, i := range miss {
		asked[j] = tokens[i]
	}
	var got []kaiwa.SessionInfo
	if sr, ok := c.d.(kaiwa.SessionResolver); ok {
		got = sr.ResolveSessions(ctx, asked)
	} else {
		got = make([]kaiwa.SessionInfo, len(asked))
		for j, tok := range asked {
			got[j] = resolveSession(ctx, c.d, tok)
		}
	}
	now := c.now()
	for j, i := range miss {
		info := got[j]
		out[i] = info
		if info.Err != nil {
			continue
		}
		id := info.Identity
		expires := now.Add(c.ttl)
		if id.ExpiresAt.Before(expires) {
			expires = id.ExpiresAt
		}
		c.put(id.Tenant, cacheKey{kind: kindToken, a: kaiwa.HashCredential(tokens[i])}, cloneIdentity(id), expires, gen)
		c.put(id.Tenant, cacheKey{kind: kindSanctions, a: id.User}, slices.Clone(info.Sanctions), now.Add(c.ttl), gen)
		c.put(id.Tenant, cacheKey{kind: kindMemberChannels, a: id.User}, slices.Clone(info.Channels), now.Add(c.ttl), gen)
	}
	return out
}

// cachedSession answers a session lookup from the cache alone, when it
// holds all of it.
func (c *Cache) cachedSession(token string) (kaiwa.SessionInfo, bool) {
	tenant, ok := kaiwa.CredentialTenant(token)
	if !ok {
		return kaiwa.SessionInfo{Err: kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")}, true
	}
	v, hit, _ := c.get(tenant, cacheKey{kind: kindToken, a: kaiwa.HashCredential(token)})
	if !hit {
		return kaiwa.SessionInfo{}, false
	}
	id := v.(kaiwa.Identity)
	now := c.now()
	if !now.Before(id.ExpiresAt) {
		return kaiwa.SessionInfo{Err: kaiwa.Errorf(kaiwa.CodeTokenExpired, "token expired")}, true
	}
	sv, hit, _ := c.get(tenant, cacheKey{kind: kindSanctions, a: id.User})
	if !hit {
		return kaiwa.SessionInfo{}, false
	}
	cv, hit, _ := c.get(tenant, cacheKey{kind: kindMemberChannels, a: id.User})
	if !hit {
		return kaiwa.SessionInfo{}, false
	}
	sanctions := slices.DeleteFunc(slices.Clone(sv.([]kaiwa.Sanction)), func(s kaiwa.Sanction) bool { return !s.Active(now) })
	return kaiwa.SessionInfo{Identity: cloneIdentity(id), Sanctions: sanctions, Channels: slices.Clone(cv.([]string))}, true
}

// resolveSession answers one session lookup with three calls to d.
func resolveSession(ctx context.Context, d kaiwa.Directory, token string) kaiwa.SessionInfo {
	var info kaiwa.SessionInfo
	if info.Identity, info.Err = d.ResolveToken(ctx, token); info.Err != nil {
		return info
	}
	if info.Sanctions, info.Err = d.Sanctions(ctx, info.Identity.Tenant, info.Identity.User); info.Err != nil {
		return kaiwa.SessionInfo{Err: info.Err}
	}
	if info.Channels, info.Err = d.MemberChannels(ctx, info.Identity.Tenant, info.Identity.User); info.Err != nil {
		return kaiwa.SessionInfo{Err: info.Err}
	}
	return info
}
