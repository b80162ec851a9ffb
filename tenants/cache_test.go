package tenants

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// countingDirectory is the real store, counting the lookups that reach it.
type countingDirectory struct {
	s *Store
	// before, when set, runs before each lookup reaches the store.
	before func(method string)

	mu    sync.Mutex
	calls map[string]int
}

func (d *countingDirectory) count(method string) {
	d.mu.Lock()
	if d.calls == nil {
		d.calls = map[string]int{}
	}
	d.calls[method]++
	d.mu.Unlock()
	if d.before != nil {
		d.before(method)
	}
}

func (d *countingDirectory) n(method string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[method]
}

func (d *countingDirectory) ResolveToken(ctx context.Context, token string) (kaiwa.Identity, error) {
	d.count("ResolveToken")
	return d.s.ResolveToken(ctx, token)
}

func (d *countingDirectory) TenantSettings(ctx context.Context, tenant kaiwa.TenantID) (kaiwa.Settings, error) {
	d.count("TenantSettings")
	return d.s.TenantSettings(ctx, tenant)
}

func (d *countingDirectory) Channel(ctx context.Context, tenant kaiwa.TenantID, ch string) (kaiwa.Channel, error) {
	d.count("Channel")
	return d.s.Channel(ctx, tenant, ch)
}

func (d *countingDirectory) IsMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) (bool, error) {
	d.count("IsMember")
	return d.s.IsMember(ctx, tenant, ch, user)
}

func (d *countingDirectory) MemberChannels(ctx context.Context, tenant kaiwa.TenantID, user string) ([]string, error) {
	d.count("MemberChannels")
	return d.s.MemberChannels(ctx, tenant, user)
}

func (d *countingDirectory) NGList(ctx context.Context, tenant kaiwa.TenantID) (kaiwa.NGList, error) {
	d.count("NGList")
	return d.s.NGList(ctx, tenant)
}

func (d *countingDirectory) Sanctions(ctx context.Context, tenant kaiwa.TenantID, user string) ([]kaiwa.Sanction, error) {
	d.count("Sanctions")
	return d.s.Sanctions(ctx, tenant, user)
}

// cacheFixture is a store with tenants a and b, a channel "lobby" with member
// alice in each, a token of alice in a, and a cache over the store whose
// clock (shared with the store) the test moves.
type cacheFixture struct {
	s     *Store
	d     *countingDirectory
	c     *Cache
	token string
	now   time.Time
	mu    sync.Mutex
}

func (f *cacheFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *cacheFixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func newCacheFixture(t *testing.T) *cacheFixture {
	t.Helper()
	ctx := context.Background()
	f := &cacheFixture{s: newStore(t), now: time.Now()}
	for _, tenant := range []kaiwa.TenantID{"a", "b"} {
		newTenant(t, f.s, tenant)
		put(t, f.s, kaiwa.Channel{Tenant: tenant, Name: "lobby"})
		_, err := f.s.AddMember(ctx, tenant, "lobby", "alice")
		must(t, err)
	}
	f.token = issue(t, f.s, "a", kaiwa.TokenRequest{User: "alice", Name: "Alice", TTL: time.Hour, Join: []string{"*"}}).Token
	f.s.SetClock(f.clock)
	f.d = &countingDirectory{s: f.s}
	f.c = NewCache(f.d, 5*time.Second)
	f.c.now = f.clock
	return f
}

// lookupAll asks the cache everything once and checks the answers against
// the store's.
func (f *cacheFixture) lookupAll(t *testing.T, tenant kaiwa.TenantID) {
	t.Helper()
	ctx := context.Background()
	if tenant == "a" {
		id, err := f.c.ResolveToken(ctx, f.token)
		want, werr := f.s.ResolveToken(ctx, f.token)
		if err != nil || werr != nil || !reflect.DeepEqual(id, want) {
			t.Fatalf("cached identity %+v, %v; store says %+v, %v", id, err, want, werr)
		}
	}
	st, err := f.c.TenantSettings(ctx, tenant)
	if err != nil || !reflect.DeepEqual(st, kaiwa.DefaultSettings()) {
		t.Fatalf("cached settings %+v, %v", st, err)
	}
	ch, err := f.c.Channel(ctx, tenant, "lobby")
	if err != nil || ch.Name != "lobby" || ch.Tenant != tenant {
		t.Fatalf("cached channel %+v, %v", ch, err)
	}
	ok, err := f.c.IsMember(ctx, tenant, "lobby", "alice")
	if err != nil || !ok {
		t.Fatalf("cached IsMember %v, %v", ok, err)
	}
	chans, err := f.c.MemberChannels(ctx, tenant, "alice")
	if err != nil || !reflect.DeepEqual(chans, []string{"lobby"}) {
		t.Fatalf("cached MemberChannels %v, %v", chans, err)
	}
	ng, err := f.c.NGList(ctx, tenant)
	want, werr := f.s.NGList(ctx, tenant)
	if err != nil || werr != nil || !reflect.DeepEqual(ng, want) {
		t.Fatalf("cached NG list %#v, %v; store says %#v, %v", ng, err, want, werr)
	}
	sn, err := f.c.Sanctions(ctx, tenant, "alice")
	if err != nil || sn == nil || len(sn) != 0 {
		t.Fatalf("cached sanctions %#v, %v", sn, err)
	}
}

func (f *cacheFixture) wantCalls(t *testing.T, want map[string]int) {
	t.Helper()
	for method, n := range want {
		if got := f.d.n(method); got != n {
			t.Fatalf("%s reached the store %d times, want %d", method, got, n)
		}
	}
}

func all(n int) map[string]int {
	return map[string]int{"ResolveToken": n, "TenantSettings": n, "Channel": n, "IsMember": n, "MemberChannels": n,
		"NGList": n, "Sanctions": n}
}

func TestCacheServesRepeatsWithinTTL(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	f.lookupAll(t, "a")
	f.lookupAll(t, "a")
	f.advance(4 * time.Second)
	f.lookupAll(t, "a")
	f.wantCalls(t, all(1))
	f.advance(2 * time.Second) // past the TTL
	f.lookupAll(t, "a")
	f.wantCalls(t, all(2))

	// The caller owns what it gets.
	chans, _ := f.c.MemberChannels(context.Background(), "a", "alice")
	chans[0] = "changed"
	id, _ := f.c.ResolveToken(context.Background(), f.token)
	id.Join[0] = "changed"
	ng, _ := f.c.NGList(context.Background(), "a")
	ng.Words = append(ng.Words, "changed")
	f.lookupAll(t, "a")
	f.wantCalls(t, all(2))
}

func TestCacheDoesNotCacheErrors(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	ctx := context.Background()
	bad := kaiwa.NewCredential("a")
	for range 3 {
		_, err := f.c.ResolveToken(ctx, bad)
		wantCode(t, err, kaiwa.CodeUnauthorized)
		_, err = f.c.Channel(ctx, "a", "nosuch")
		wantCode(t, err, kaiwa.CodeNotFound)
		_, err = f.c.TenantSettings(ctx, "nosuch")
		wantCode(t, err, kaiwa.CodeNotFound)
	}
	_, err := f.c.ResolveToken(ctx, "malformed")
	wantCode(t, err, kaiwa.CodeUnauthorized)
	f.wantCalls(t, map[string]int{"ResolveToken": 3, "Channel": 3, "TenantSettings": 3})
	// A channel created after a miss is found at once.
	put(t, f.s, kaiwa.Channel{Tenant: "a", Name: "nosuch"})
	if _, err := f.c.Channel(ctx, "a", "nosuch"); err != nil {
		t.Fatal(err)
	}
}

func TestCacheNeverOutlivesToken(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	ctx := context.Background()
	tok := issue(t, f.s, "a", kaiwa.TokenRequest{User: "bob", TTL: 2 * time.Second})
	if _, err := f.c.ResolveToken(ctx, tok.Token); err != nil {
		t.Fatal(err)
	}
	f.advance(time.Second)
	if _, err := f.c.ResolveToken(ctx, tok.Token); err != nil {
		t.Fatal(err)
	}
	f.wantCalls(t, map[string]int{"ResolveToken": 1})
	f.advance(1500 * time.Millisecond) // the token expired, the cache TTL did not
	_, err := f.c.ResolveToken(ctx, tok.Token)
	wantCode(t, err, kaiwa.CodeTokenExpired)
}

func TestCacheInvalidation(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	ctx := context.Background()
	f.lookupAll(t, "a")
	f.lookupAll(t, "b")

	// Changes in the store are served stale until invalidated.
	n, err := f.s.RevokeTokens(ctx, "a", "alice")
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	put(t, f.s, kaiwa.Channel{Tenant: "a", Name: "guild"})
	_, err = f.s.AddMember(ctx, "a", "guild", "alice")
	must(t, err)
	if _, err := f.c.ResolveToken(ctx, f.token); err != nil {
		t.Fatalf("revocation visible before invalidation: %v", err)
	}
	f.c.InvalidateUser("a", "alice")
	_, err = f.c.ResolveToken(ctx, f.token)
	wantCode(t, err, kaiwa.CodeUnauthorized)
	chans, err := f.c.MemberChannels(ctx, "a", "alice")
	if err != nil || !reflect.DeepEqual(chans, []string{"guild", "lobby"}) {
		t.Fatalf("MemberChannels after InvalidateUser = %v, %v", chans, err)
	}
	// Only alice's entries of a went: b's and the tenant's stayed.
	f.lookupAll(t, "b")
	if _, err := f.c.TenantSettings(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	f.wantCalls(t, map[string]int{"TenantSettings": 2, "Channel": 2, "MemberChannels": 3})

	must(t, f.s.DeleteChannel(ctx, "a", "lobby"))
	f.c.InvalidateChannel("a", "lobby")
	_, err = f.c.Channel(ctx, "a", "lobby")
	wantCode(t, err, kaiwa.CodeNotFound)
	if ok, err := f.c.IsMember(ctx, "a", "lobby", "alice"); err != nil || ok {
		t.Fatalf("IsMember after InvalidateChannel = %v, %v", ok, err)
	}

	must(t, f.s.SetTenantSettings(ctx, "a", kaiwa.Settings{MaxTextLen: 10}))
	f.c.Invalidate("a")
	if st, err := f.c.TenantSettings(ctx, "a"); err != nil || st.MaxTextLen != 10 {
		t.Fatalf("settings after Invalidate = %+v, %v", st, err)
	}
	f.lookupAll(t, "b")
	f.wantCalls(t, map[string]int{"TenantSettings": 3})
}

func TestCacheDropsLookupRacingInvalidation(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	ctx := context.Background()
	arrived, release := make(chan struct{}), make(chan struct{})
	f.d.before = func(method string) {
		if method == "IsMember" {
			close(arrived)
			<-release
		}
	}
	done := make(chan bool)
	go func() {
		ok, _ := f.c.IsMember(ctx, "a", "lobby", "bob")
		done <- ok
	}()
	<-arrived // the lookup has passed the cache and waits at the store
	_, err := f.s.AddMember(ctx, "a", "lobby", "bob")
	must(t, err)
	f.c.InvalidateUser("a", "bob")
	f.d.before = nil
	close(release)
	<-done // whatever it read, it must not be kept
	if ok, err := f.c.IsMember(ctx, "a", "lobby", "bob"); err != nil || !ok {
		t.Fatalf("IsMember after the racing invalidation = %v, %v", ok, err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	f.c.MaxEntries = 20
	ctx := context.Background()
	for i := range 100 {
		if _, err := f.c.IsMember(ctx, "a", "lobby", fmt.Sprintf("user%d", i)); err != nil {
			t.Fatal(err)
		}
		if n := f.c.Len(); n > 20 {
			t.Fatalf("%d entries, bound 20", n)
		}
	}
	f.c.Invalidate("a")
	if n := f.c.Len(); n != 0 {
		t.Fatalf("%d entries after invalidating the only tenant", n)
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	f.c.MaxEntries = 50
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				user := fmt.Sprintf("u%d", (g*7+i)%80)
				switch i % 5 {
				case 0:
					f.c.InvalidateUser("a", user)
				case 1:
					if _, err := f.c.ResolveToken(ctx, f.token); err != nil {
						t.Error(err)
						return
					}
				case 2:
					if ok, err := f.c.IsMember(ctx, "a", "lobby", user); err != nil || ok {
						t.Error(ok, err)
						return
					}
				case 3:
					if _, err := f.c.MemberChannels(ctx, "a", user); err != nil {
						t.Error(err)
						return
					}
				case 4:
					if g == 0 {
						f.c.Invalidate("a")
					}
					if _, err := f.c.TenantSettings(ctx, "a"); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := f.c.Len(); n > 50 {
		t.Fatalf("%d entries, bound 50", n)
	}
}

func TestCacheNGListAndSanctions(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	ctx := context.Background()
	_, err := f.s.PutNGList(ctx, "a", kaiwa.NGList{Words: []string{"darn"}, Allow: []string{"darning"}})
	must(t, err)
	ngList := func(tenant kaiwa.TenantID) kaiwa.NGList {
		t.Helper()
		l, err := f.c.NGList(ctx, tenant)
		must(t, err)
		return l
	}
	sanctions := func(user string) []kaiwa.Sanction {
		t.Helper()
		l, err := f.c.Sanctions(ctx, "a", user)
		must(t, err)
		return l
	}
	first := ngList("a")
	ngList("a")
	ngList("b")
	sanctions("alice")
	sanctions("bob")
	sanctions("alice")
	f.wantCalls(t, map[string]int{"NGList": 2, "Sanctions": 2})

	// The caller owns what it gets.
	first.Words[0] = "changed"
	if l := ngList("a"); l.Words[0] != "darn" {
		t.Fatalf("the cached list changed with the caller's copy: %v", l.Words)
	}

	// Changes are served stale until invalidated; InvalidateNG drops the
	// tenant's list and settings (the policy), and nothing of b's.
	_, err = f.s.AddNGWords(ctx, "a", kaiwa.NGList{Policy: kaiwa.NGMask, Words: []string{"heck"}})
	must(t, err)
	if l := ngList("a"); len(l.Words) != 1 {
		t.Fatalf("change visible before invalidation: %v", l)
	}
	if _, err := f.c.TenantSettings(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	f.c.InvalidateNG("a")
	if l := ngList("a"); !reflect.DeepEqual(l.Words, []string{"darn", "heck"}) || l.Policy != kaiwa.NGMask {
		t.Fatalf("NG list after InvalidateNG = %#v", l)
	}
	if st, err := f.c.TenantSettings(ctx, "a"); err != nil || st.NGPolicy != kaiwa.NGMask {
		t.Fatalf("settings after InvalidateNG = %+v, %v", st, err)
	}
	ngList("b")
	f.wantCalls(t, map[string]int{"NGList": 3, "TenantSettings": 2})

	// InvalidateUser drops the user's sanctions only.
	must(t, f.s.PutSanction(ctx, kaiwa.Sanction{Tenant: "a", User: "alice", Kind: kaiwa.SanctionMute, Until: f.clock().Add(3 * time.Second)}))
	if l := sanctions("alice"); len(l) != 0 {
		t.Fatalf("mute visible before invalidation: %+v", l)
	}
	f.c.InvalidateUser("a", "alice")
	if l := sanctions("alice"); len(l) != 1 || l[0].Kind != kaiwa.SanctionMute {
		t.Fatalf("sanctions after InvalidateUser = %+v", l)
	}
	sanctions("bob")
	f.wantCalls(t, map[string]int{"Sanctions": 3})
	// A cached sanction that ends is not returned, though the entry lives.
	f.advance(3 * time.Second)
	if l := sanctions("alice"); len(l) != 0 {
		t.Fatalf("an ended mute is still served: %+v", l)
	}
	f.wantCalls(t, map[string]int{"Sanctions": 3})

	// Errors are not cached.
	for range 2 {
		_, err := f.c.NGList(ctx, "nosuch")
		wantCode(t, err, kaiwa.CodeNotFound)
	}
	f.wantCalls(t, map[string]int{"NGList": 5})
}

// batchingDirectory is a countingDirectory that also answers session
// lookups in batches.
type batchingDirectory struct {
	*countingDirectory
	batches [][]string
}

func (d *batchingDirectory) ResolveSessions(ctx context.Context, tokens []string) []kaiwa.SessionInfo {
	d.count("ResolveSessions")
	d.mu.Lock()
	d.batches = append(d.batches, append([]string(nil), tokens...))
	d.mu.Unlock()
	return d.s.ResolveSessions(ctx, tokens)
}

func TestCacheResolveSessions(t *testing.T) {
	t.Parallel()
	f := newCacheFixture(t)
	ctx := context.Background()
	must(t, f.s.PutSanction(ctx, kaiwa.Sanction{Tenant: "a", User: "alice", Kind: kaiwa.SanctionMute, Until: f.clock().Add(3 * time.Second)}))
	bd := &batchingDirectory{countingDirectory: f.d}
	c := NewCache(bd, 5*time.Second)
	c.now = f.clock
	tokens := []string{f.token, "garbage", f.token}
	want := f.s.ResolveSessions(ctx, tokens)
	if want[0].Err != nil || len(want[0].Sanctions) != 1 || len(want[0].Channels) != 1 {
		t.Fatalf("the store's answer is not what the fixture made: %+v", want[0])
	}
	check := func(when string, got []kaiwa.SessionInfo) {
		t.Helper()
		for i := range want {
			if kaiwa.ErrorCode(got[i].Err) != kaiwa.ErrorCode(want[i].Err) || (got[i].Err == nil) != (want[i].Err == nil) {
				t.Fatalf("%s: token %d: %v, want %v", when, i, got[i].Err, want[i].Err)
			}
			if want[i].Err == nil && !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%s: token %d:\n got %+v\nwant %+v", when, i, got[i], want[i])
			}
		}
	}
	check("first", c.ResolveSessions(ctx, tokens))
	if bd.n("ResolveSessions") != 1 || len(bd.batches[0]) != 2 {
		t.Fatalf("the misses were not asked in one batch: %q", bd.batches)
	}
	check("cached", c.ResolveSessions(ctx, tokens))
	if bd.n("ResolveSessions") != 1 {
		t.Fatal("a second lookup within the TTL reached the directory")
	}
	// The mute ends within the TTL: the cached answer no longer has it.
	f.advance(4 * time.Second)
	if got := c.ResolveSessions(ctx, tokens[:1]); got[0].Err != nil || len(got[0].Sanctions) != 0 || bd.n("ResolveSessions") != 1 {
		t.Fatalf("after the mute ended: %+v", got[0])
	}
	// Past the TTL, or after an invalidation, the directory is asked again.
	f.advance(5 * time.Second)
	c.ResolveSessions(ctx, tokens[:1])
	if bd.n("ResolveSessions") != 2 {
		t.Fatal("an expired entry was served")
	}
	n, err := f.s.RevokeTokens(ctx, "a", "alice")
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	c.InvalidateUser("a", "alice")
	if got := c.ResolveSessions(ctx, tokens[:1]); kaiwa.ErrorCode(got[0].Err) != kaiwa.CodeUnauthorized {
		t.Fatalf("a revoked token after invalidation: %+v", got[0])
	}

	// A directory that cannot batch is asked one lookup at a time.
	g := newCacheFixture(t)
	got := g.c.ResolveSessions(ctx, []string{g.token})
	if got[0].Err != nil || got[0].Identity.User != "alice" || !reflect.DeepEqual(got[0].Channels, []string{"lobby"}) {
		t.Fatalf("without batching: %+v", got[0])
	}
	g.wantCalls(t, map[string]int{"ResolveToken": 1, "Sanctions": 1, "MemberChannels": 1})
}

// TestCachedKeys: a key found valid is not checked again within the TTL;
// a refused key always is; a revocation this process makes (Invalidate)
// is refused at once; another process's revocation within the TTL.
func TestCachedKeys(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t)
	key := newTenant(t, f.s, "keys")
	spare, err := f.s.RotateKey(ctx, "keys")
	must(t, err)
	k := CachedKeys{TenantStore: f.s, Cache: f.c}
	for range 3 {
		got, err := k.AuthenticateKey(ctx, key)
		if err != nil || got != "keys" {
			t.Fatalf("AuthenticateKey = %q, %v", got, err)
		}
	}
	// Revoke it behind the cache's back (another process): still admitted
	// within the TTL, refused after it.
	keys, err := f.s.APIKeys(ctx, "keys")
	must(t, err)
	var first int64
	for _, ak := range keys {
		if first == 0 || ak.ID < first {
			first = ak.ID
		}
	}
	must(t, f.s.RevokeKey(ctx, "keys", first))
	if got, err := k.AuthenticateKey(ctx, key); err != nil || got != "keys" {
		t.Fatalf("within the TTL: %q, %v; want the cached answer", got, err)
	}
	f.advance(6 * time.Second)
	_, err = k.AuthenticateKey(ctx, key)
	wantCode(t, err, kaiwa.CodeUnauthorized)
	// A refused key is asked again every time: it is still refused.
	_, err = k.AuthenticateKey(ctx, key)
	wantCode(t, err, kaiwa.CodeUnauthorized)
	// This process's own revocation drops the cached check at once.
	if got, err := k.AuthenticateKey(ctx, spare); err != nil || got != "keys" {
		t.Fatalf("spare key: %q, %v", got, err)
	}
	must(t, f.s.DisableTenant(ctx, "keys"))
	f.c.Invalidate("keys")
	_, err = k.AuthenticateKey(ctx, spare)
	wantCode(t, err, kaiwa.CodeUnauthorized)
	// Not a key at all.
	_, err = k.AuthenticateKey(ctx, "no-tenant-prefix")
	wantCode(t, err, kaiwa.CodeUnauthorized)
}
