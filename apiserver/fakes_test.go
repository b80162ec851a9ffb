package apiserver

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// The fakes below are in-memory implementations of the root contracts,
// keyed by tenant like the MySQL store, so that tests can check that a call
// made with one tenant's key never reaches another tenant's data. The
// integration tests against MySQL and NATS live with cmd/kaiwa.

var (
	_ kaiwa.TenantStore  = (*fakeTenants)(nil)
	_ kaiwa.TokenStore   = (*fakeTokens)(nil)
	_ kaiwa.ChannelStore = (*fakeChannels)(nil)
	_ kaiwa.MessageLog   = (*fakeLog)(nil)
	_ kaiwa.Publisher    = (*fakeBus)(nil)
)

// fakeTenants keeps tenants and their keys. Fail, when set, is returned by
// AuthenticateKey and TenantSettings.
type fakeTenants struct {
	mu      sync.Mutex
	tenants map[kaiwa.TenantID]*kaiwa.Tenant
	keys    map[string]kaiwa.TenantID
	Fail    error
}

func newFakeTenants() *fakeTenants {
	return &fakeTenants{tenants: map[kaiwa.TenantID]*kaiwa.Tenant{}, keys: map[string]kaiwa.TenantID{}}
}

func (f *fakeTenants) CreateTenant(ctx context.Context, id kaiwa.TenantID, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := kaiwa.CheckID("tenant", string(id)); err != nil {
		return "", err
	}
	if _, ok := f.tenants[id]; ok {
		return "", kaiwa.Errorf(kaiwa.CodeConflict, "tenant %s exists", id)
	}
	f.tenants[id] = &kaiwa.Tenant{ID: id, Name: name, CreatedAt: time.Now()}
	key := kaiwa.NewCredential(id)
	f.keys[key] = id
	return key, nil
}

func (f *fakeTenants) Tenants(ctx context.Context) ([]kaiwa.Tenant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kaiwa.Tenant
	for _, t := range f.tenants {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeTenants) RotateKey(ctx context.Context, id kaiwa.TenantID) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tenants[id]; !ok {
		return "", kaiwa.Errorf(kaiwa.CodeNotFound, "tenant not found")
	}
	key := kaiwa.NewCredential(id)
	f.keys[key] = id
	return key, nil
}

func (f *fakeTenants) DisableTenant(ctx context.Context, id kaiwa.TenantID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tenants[id]
	if !ok {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "tenant not found")
	}
	t.Disabled = true
	return nil
}

func (f *fakeTenants) AuthenticateKey(ctx context.Context, apiKey string) (kaiwa.TenantID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return "", f.Fail
	}
	id, ok := f.keys[apiKey]
	if !ok || f.tenants[id].Disabled {
		return "", kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid API key")
	}
	return id, nil
}

func (f *fakeTenants) TenantSettings(ctx context.Context, id kaiwa.TenantID) (kaiwa.Settings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return kaiwa.Settings{}, f.Fail
	}
	t, ok := f.tenants[id]
	if !ok {
		return kaiwa.Settings{}, kaiwa.Errorf(kaiwa.CodeNotFound, "tenant not found")
	}
	return t.Settings.WithDefaults(), nil
}

// setSettings changes a tenant's settings.
func (f *fakeTenants) setSettings(id kaiwa.TenantID, s kaiwa.Settings) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tenants[id].Settings = s
}

// fakeTokens keeps user tokens by their text.
type fakeTokens struct {
	mu     sync.Mutex
	tokens map[string]kaiwa.Identity
	Fail   error
}

func newFakeTokens() *fakeTokens { return &fakeTokens{tokens: map[string]kaiwa.Identity{}} }

func (f *fakeTokens) IssueToken(ctx context.Context, tenant kaiwa.TenantID, req kaiwa.TokenRequest) (kaiwa.IssuedToken, error) {
	if err := req.Check(); err != nil {
		return kaiwa.IssuedToken{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return kaiwa.IssuedToken{}, f.Fail
	}
	tok := kaiwa.NewCredential(tenant)
	exp := time.Now().Add(req.TTL)
	f.tokens[tok] = kaiwa.Identity{
		Tenant: tenant, User: req.User, Name: req.Name, ExpiresAt: exp,
		Join: slices.Clone(req.Join), Publish: slices.Clone(req.Publish),
	}
	return kaiwa.IssuedToken{Token: tok, ExpiresAt: exp}, nil
}

func (f *fakeTokens) ResolveToken(ctx context.Context, token string) (kaiwa.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.tokens[token]
	if !ok {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
	}
	if time.Now().After(id.ExpiresAt) {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeTokenExpired, "token expired")
	}
	return id, nil
}

func (f *fakeTokens) RevokeTokens(ctx context.Context, tenant kaiwa.TenantID, user string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return 0, f.Fail
	}
	n := 0
	for tok, id := range f.tokens {
		if id.Tenant == tenant && id.User == user {
			delete(f.tokens, tok)
			n++
		}
	}
	return n, nil
}

// fakeChannels keeps channels and membership per tenant.
type fakeChannels struct {
	mu       sync.Mutex
	channels map[kaiwa.TenantID]map[string]*fakeChannel
	Fail     error
	// Panic, when set, makes Members panic with it.
	Panic any
}

type fakeChannel struct {
	ch      kaiwa.Channel
	members map[string]bool
}

func newFakeChannels() *fakeChannels {
	return &fakeChannels{channels: map[kaiwa.TenantID]map[string]*fakeChannel{}}
}

func (f *fakeChannels) get(tenant kaiwa.TenantID, ch string) (*fakeChannel, error) {
	if c, ok := f.channels[tenant][ch]; ok {
		return c, nil
	}
	return nil, kaiwa.Errorf(kaiwa.CodeNotFound, "channel not found")
}

func (f *fakeChannels) PutChannel(ctx context.Context, ch kaiwa.Channel) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return false, f.Fail
	}
	if f.channels[ch.Tenant] == nil {
		f.channels[ch.Tenant] = map[string]*fakeChannel{}
	}
	if c, ok := f.channels[ch.Tenant][ch.Name]; ok {
		c.ch.Kind, c.ch.Title = ch.Kind, ch.Title
		return false, nil
	}
	ch.CreatedAt = time.Now().UTC().Truncate(time.Second)
	f.channels[ch.Tenant][ch.Name] = &fakeChannel{ch: ch, members: map[string]bool{}}
	return true, nil
}

func (f *fakeChannels) DeleteChannel(ctx context.Context, tenant kaiwa.TenantID, ch string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	if _, err := f.get(tenant, ch); err != nil {
		return err
	}
	delete(f.channels[tenant], ch)
	return nil
}

func (f *fakeChannels) Channel(ctx context.Context, tenant kaiwa.TenantID, ch string) (kaiwa.Channel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return kaiwa.Channel{}, f.Fail
	}
	if _, _, ok := kaiwa.ParseDM(ch); ok {
		return kaiwa.Channel{Tenant: tenant, Name: ch, Kind: kaiwa.ChannelClosed}, nil
	}
	c, err := f.get(tenant, ch)
	if err != nil {
		return kaiwa.Channel{}, err
	}
	return c.ch, nil
}

func (f *fakeChannels) AddMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return false, f.Fail
	}
	c, err := f.get(tenant, ch)
	if err != nil {
		return false, err
	}
	if c.members[user] {
		return false, nil
	}
	c.members[user] = true
	return true, nil
}

func (f *fakeChannels) RemoveMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	c, err := f.get(tenant, ch)
	if err != nil {
		return err
	}
	if !c.members[user] {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "not a member")
	}
	delete(c.members, user)
	return nil
}

func (f *fakeChannels) Members(ctx context.Context, tenant kaiwa.TenantID, ch string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Panic != nil {
		panic(f.Panic)
	}
	if f.Fail != nil {
		return nil, f.Fail
	}
	c, err := f.get(tenant, ch)
	if err != nil {
		return nil, err
	}
	var out []string
	for u := range c.members {
		out = append(out, u)
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeChannels) IsMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, b, ok := kaiwa.ParseDM(ch); ok {
		return user == a || user == b, nil
	}
	c, err := f.get(tenant, ch)
	if err != nil {
		return false, nil
	}
	return c.members[user], nil
}

func (f *fakeChannels) MemberChannels(ctx context.Context, tenant kaiwa.TenantID, user string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name, c := range f.channels[tenant] {
		if c.members[user] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// fakeLog is a message log in memory. Ids are "m" + seq; cursors are ids.
type fakeLog struct {
	mu   sync.Mutex
	msgs []kaiwa.Message
	// Last is the query of the latest Messages call.
	Last kaiwa.MessageQuery
	Fail error
}

func (f *fakeLog) AppendMessages(ctx context.Context, msgs []kaiwa.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		if !slices.ContainsFunc(f.msgs, func(o kaiwa.Message) bool { return o.Tenant == m.Tenant && o.ID == m.ID }) {
			f.msgs = append(f.msgs, m)
		}
	}
	return nil
}

func (f *fakeLog) Messages(ctx context.Context, tenant kaiwa.TenantID, q kaiwa.MessageQuery) (kaiwa.MessagePage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Last = q
	if f.Fail != nil {
		return kaiwa.MessagePage{}, f.Fail
	}
	seqOf := func(id string) (uint64, error) {
		for _, m := range f.msgs {
			if m.Tenant == tenant && m.ID == id {
				return m.Seq, nil
			}
		}
		return 0, kaiwa.Errorf(kaiwa.CodeBadRequest, "unknown message id %q", id)
	}
	var after, before uint64
	var err error
	if q.After != "" {
		if after, err = seqOf(q.After); err != nil {
			return kaiwa.MessagePage{}, err
		}
	}
	if q.Before != "" {
		if before, err = seqOf(q.Before); err != nil {
			return kaiwa.MessagePage{}, err
		}
	}
	var sel []kaiwa.Message
	for _, m := range f.msgs {
		switch {
		case m.Tenant != tenant, m.Channel != q.Channel,
			q.User != "" && m.From != q.User,
			!q.Since.IsZero() && m.TS < q.Since.UnixMilli(),
			!q.Until.IsZero() && m.TS >= q.Until.UnixMilli(),
			after != 0 && m.Seq <= after,
			before != 0 && m.Seq >= before:
			continue
		}
		sel = append(sel, m)
	}
	sort.Slice(sel, func(i, j int) bool { return sel[i].Seq < sel[j].Seq })
	if q.Desc {
		slices.Reverse(sel)
	}
	var page kaiwa.MessagePage
	if len(sel) > q.Limit {
		sel = sel[:q.Limit]
		page.Next = sel[len(sel)-1].ID
	}
	page.Messages = sel
	return page, nil
}

// fakeBus assigns sequence numbers like the stream, writes published
// messages to its log like the log writer, and records controls.
type fakeBus struct {
	mu       sync.Mutex
	seq      uint64
	log      *fakeLog
	controls []kaiwa.Control
	messages []kaiwa.Message
	Fail     error
}

func (f *fakeBus) Publish(ctx context.Context, m kaiwa.Message) (kaiwa.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return kaiwa.Message{}, f.Fail
	}
	f.seq++
	m.Seq = f.seq
	m.ID = fmt.Sprintf("m%d", m.Seq)
	f.messages = append(f.messages, m)
	if f.log != nil {
		if err := f.log.AppendMessages(ctx, []kaiwa.Message{m}); err != nil {
			return kaiwa.Message{}, err
		}
	}
	return m, nil
}

func (f *fakeBus) PublishControl(ctx context.Context, c kaiwa.Control) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	f.controls = append(f.controls, c)
	return nil
}

// Controls returns the controls published so far.
func (f *fakeBus) Controls() []kaiwa.Control {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.controls)
}

// Messages returns the messages published so far.
func (f *fakeBus) Messages() []kaiwa.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.messages)
}

// logMessage puts a user's chat message in the log, as a UA would.
func (f *fakeBus) logMessage(tenant kaiwa.TenantID, ch, from, text string, ts int64) kaiwa.Message {
	f.mu.Lock()
	f.seq++
	m := kaiwa.Message{Tenant: tenant, Channel: ch, ID: fmt.Sprintf("m%d", f.seq), Seq: f.seq,
		From: from, Name: strings.ToUpper(from), Text: text, TS: ts}
	f.mu.Unlock()
	_ = f.log.AppendMessages(context.Background(), []kaiwa.Message{m})
	return m
}
