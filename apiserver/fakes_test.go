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
	_ kaiwa.TenantStore     = (*fakeTenants)(nil)
	_ kaiwa.TokenStore      = (*fakeTokens)(nil)
	_ kaiwa.ChannelStore    = (*fakeChannels)(nil)
	_ kaiwa.MessageLog      = (*fakeLog)(nil)
	_ kaiwa.Publisher       = (*fakeBus)(nil)
	_ kaiwa.NGStore         = (*fakeNG)(nil)
	_ kaiwa.ModerationStore = (*fakeSanctions)(nil)
	_ kaiwa.EventLog        = (*fakeEvents)(nil)
	_ kaiwa.Recorder        = (*fakeEvents)(nil)
)

// fakeTenants keeps tenants and their keys. Fail, when set, is returned by
// AuthenticateKey and TenantSettings; SettingsFail by TenantSettings only.
type fakeTenants struct {
	mu           sync.Mutex
	tenants      map[kaiwa.TenantID]*kaiwa.Tenant
	keys         map[string]*fakeKey
	nextKey      int64
	settingsRead int
	Fail         error
	SettingsFail error
}

// fakeKey is an API key as the store keeps it.
type fakeKey struct {
	tenant kaiwa.TenantID
	info   kaiwa.APIKey
}

func newFakeTenants() *fakeTenants {
	return &fakeTenants{tenants: map[kaiwa.TenantID]*kaiwa.Tenant{}, keys: map[string]*fakeKey{}}
}

// addKey makes a key for tenant id. Call with mu held.
func (f *fakeTenants) addKey(id kaiwa.TenantID) string {
	key := kaiwa.NewCredential(id)
	f.nextKey++
	f.keys[key] = &fakeKey{tenant: id, info: kaiwa.APIKey{ID: f.nextKey, CreatedAt: time.Now().UTC().Truncate(time.Second)}}
	return key
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
	return f.addKey(id), nil
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
	if f.Fail != nil {
		return "", f.Fail
	}
	if _, ok := f.tenants[id]; !ok {
		return "", kaiwa.Errorf(kaiwa.CodeNotFound, "tenant not found")
	}
	return f.addKey(id), nil
}

func (f *fakeTenants) APIKeys(ctx context.Context, id kaiwa.TenantID) ([]kaiwa.APIKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return nil, f.Fail
	}
	var out []kaiwa.APIKey
	for _, k := range f.keys {
		if k.tenant == id {
			out = append(out, k.info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeTenants) RevokeKey(ctx context.Context, id kaiwa.TenantID, keyID int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	var target *fakeKey
	active := 0
	for _, k := range f.keys {
		if k.tenant != id || !k.info.RevokedAt.IsZero() {
			continue
		}
		active++
		if k.info.ID == keyID {
			target = k
		}
	}
	if target == nil {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no active api key %d", keyID)
	}
	if active == 1 {
		return kaiwa.Errorf(kaiwa.CodeConflict, "api key %d is the last active key", keyID)
	}
	target.info.RevokedAt = time.Now().UTC().Truncate(time.Second)
	return nil
}

func (f *fakeTenants) SetTenantSettings(ctx context.Context, id kaiwa.TenantID, s kaiwa.Settings) error {
	if err := s.Check(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tenants[id]
	if !ok {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "tenant not found")
	}
	t.Settings = s
	return nil
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
	k, ok := f.keys[apiKey]
	if !ok || f.tenants[k.tenant].Disabled || !k.info.RevokedAt.IsZero() {
		return "", kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid API key")
	}
	k.info.LastUsedAt = time.Now().UTC().Truncate(time.Second)
	return k.tenant, nil
}

func (f *fakeTenants) TenantSettings(ctx context.Context, id kaiwa.TenantID) (kaiwa.Settings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settingsRead++
	if f.Fail != nil {
		return kaiwa.Settings{}, f.Fail
	}
	if f.SettingsFail != nil {
		return kaiwa.Settings{}, f.SettingsFail
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

// settingsReads returns how often TenantSettings was called.
func (f *fakeTenants) settingsReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.settingsRead
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

func (f *fakeChannels) Channels(ctx context.Context, tenant kaiwa.TenantID, kind kaiwa.ChannelKind) ([]kaiwa.Channel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return nil, f.Fail
	}
	out := []kaiwa.Channel{}
	for _, c := range f.channels[tenant] {
		if kind == "" || c.ch.Kind == kind {
			out = append(out, c.ch)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// fakeLog is a message log in memory. Ids are "m" + seq; cursors are ids.
// Deleted messages leave tombstones, so a later append stays deleted.
type fakeLog struct {
	mu         sync.Mutex
	msgs       []kaiwa.Message
	tombstones map[fakeMsgKey]bool
	// Last is the query of the latest Messages call.
	Last kaiwa.MessageQuery
	Fail error
}

// fakeMsgKey names a message of a tenant's channel.
type fakeMsgKey struct {
	tenant kaiwa.TenantID
	ch, id string
}

func (f *fakeLog) AppendMessages(ctx context.Context, msgs []kaiwa.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		if f.tombstones[fakeMsgKey{m.Tenant, m.Channel, m.ID}] {
			continue
		}
		if !slices.ContainsFunc(f.msgs, func(o kaiwa.Message) bool { return o.Tenant == m.Tenant && o.ID == m.ID }) {
			f.msgs = append(f.msgs, m)
		}
	}
	return nil
}

func (f *fakeLog) DeleteMessage(ctx context.Context, tenant kaiwa.TenantID, ch, id string, pending bool) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return false, f.Fail
	}
	if f.tombstones == nil {
		f.tombstones = map[fakeMsgKey]bool{}
	}
	n := len(f.msgs)
	if pending || slices.ContainsFunc(f.msgs, func(m kaiwa.Message) bool {
		return m.Tenant == tenant && m.Channel == ch && m.ID == id
	}) {
		f.tombstones[fakeMsgKey{tenant, ch, id}] = true
	}
	f.msgs = slices.DeleteFunc(f.msgs, func(m kaiwa.Message) bool {
		return m.Tenant == tenant && m.Channel == ch && m.ID == id
	})
	return len(f.msgs) < n, nil
}

// snapshot returns the tenant's messages in the log.
func (f *fakeLog) snapshot(tenant kaiwa.TenantID) []kaiwa.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kaiwa.Message
	for _, m := range f.msgs {
		if m.Tenant == tenant {
			out = append(out, m)
		}
	}
	return out
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
		case m.Tenant != tenant, q.Channel != "" && m.Channel != q.Channel,
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
// messages to its log like the log writer, and records controls. The
// stream holds every message until it is deleted or dropped.
type fakeBus struct {
	mu       sync.Mutex
	seq      uint64
	log      *fakeLog
	controls []kaiwa.Control
	messages []kaiwa.Message
	stream   map[fakeMsgKey]bool
	Fail     error
	// ControlFail, when set, is returned by PublishControl.
	ControlFail error
	// FailAfter, when positive, makes Publish fail with Fail once that
	// many more messages were published.
	FailAfter int
}

func (f *fakeBus) DeleteMessage(ctx context.Context, tenant kaiwa.TenantID, ch, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	k := fakeMsgKey{tenant, ch, id}
	if !f.stream[k] {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no such message")
	}
	delete(f.stream, k)
	return nil
}

// streamOnly puts a chat message in the stream that the log writer has not
// written to the log yet.
func (f *fakeBus) streamOnly(tenant kaiwa.TenantID, ch, from, text string) kaiwa.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	m := kaiwa.Message{Tenant: tenant, Channel: ch, ID: fmt.Sprintf("m%d", f.seq), Seq: f.seq,
		From: from, Text: text, TS: kaiwa.Now()}
	f.keep(m)
	return m
}

// drop removes a message from the stream, as its age limit would.
func (f *fakeBus) drop(m kaiwa.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.stream, fakeMsgKey{m.Tenant, m.Channel, m.ID})
}

// inStream reports whether the stream holds the message.
func (f *fakeBus) inStream(m kaiwa.Message) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stream[fakeMsgKey{m.Tenant, m.Channel, m.ID}]
}

// keep puts a message in the stream. Call with mu held.
func (f *fakeBus) keep(m kaiwa.Message) {
	if f.stream == nil {
		f.stream = map[fakeMsgKey]bool{}
	}
	f.stream[fakeMsgKey{m.Tenant, m.Channel, m.ID}] = true
}

func (f *fakeBus) Publish(ctx context.Context, m kaiwa.Message) (kaiwa.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.FailAfter > 0 {
		f.FailAfter--
	} else if f.Fail != nil {
		return kaiwa.Message{}, f.Fail
	}
	if err := ctx.Err(); err != nil {
		return kaiwa.Message{}, err
	}
	f.seq++
	m.Seq = f.seq
	m.ID = fmt.Sprintf("m%d", m.Seq)
	f.messages = append(f.messages, m)
	f.keep(m)
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
	if f.ControlFail != nil {
		return f.ControlFail
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
	f.keep(m)
	f.mu.Unlock()
	_ = f.log.AppendMessages(context.Background(), []kaiwa.Message{m})
	return m
}

// fakeNG keeps NG lists per tenant; the policy lives in the tenant's
// settings, as in the MySQL store.
type fakeNG struct {
	mu      sync.Mutex
	tenants *fakeTenants
	lists   map[kaiwa.TenantID]*kaiwa.NGList
	Fail    error
}

func newFakeNG(tenants *fakeTenants) *fakeNG {
	return &fakeNG{tenants: tenants, lists: map[kaiwa.TenantID]*kaiwa.NGList{}}
}

// list returns the tenant's list with its policy. Call with mu held.
func (f *fakeNG) list(ctx context.Context, tenant kaiwa.TenantID) (kaiwa.NGList, error) {
	st, err := f.tenants.TenantSettings(ctx, tenant)
	if err != nil {
		return kaiwa.NGList{}, err
	}
	out := kaiwa.NGList{Policy: st.NGPolicy, Words: []string{}, Allow: []string{}}
	if l := f.lists[tenant]; l != nil {
		out.Words, out.Allow = slices.Clone(l.Words), slices.Clone(l.Allow)
	}
	return out, nil
}

// setPolicy stores a policy in the tenant's settings. Call with mu held.
func (f *fakeNG) setPolicy(tenant kaiwa.TenantID, policy string) {
	if policy == "" {
		return
	}
	f.tenants.mu.Lock()
	defer f.tenants.mu.Unlock()
	f.tenants.tenants[tenant].Settings.NGPolicy = policy
}

func (f *fakeNG) NGList(ctx context.Context, tenant kaiwa.TenantID) (kaiwa.NGList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return kaiwa.NGList{}, f.Fail
	}
	return f.list(ctx, tenant)
}

func (f *fakeNG) PutNGList(ctx context.Context, tenant kaiwa.TenantID, l kaiwa.NGList) (kaiwa.NGList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return kaiwa.NGList{}, f.Fail
	}
	f.lists[tenant] = &kaiwa.NGList{Words: uniq(nil, l.Words), Allow: uniq(nil, l.Allow)}
	f.setPolicy(tenant, l.Policy)
	return f.list(ctx, tenant)
}

func (f *fakeNG) AddNGWords(ctx context.Context, tenant kaiwa.TenantID, l kaiwa.NGList) (kaiwa.NGList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return kaiwa.NGList{}, f.Fail
	}
	cur := f.lists[tenant]
	if cur == nil {
		cur = &kaiwa.NGList{}
		f.lists[tenant] = cur
	}
	cur.Words, cur.Allow = uniq(cur.Words, l.Words), uniq(cur.Allow, l.Allow)
	f.setPolicy(tenant, l.Policy)
	return f.list(ctx, tenant)
}

func (f *fakeNG) DeleteNGWord(ctx context.Context, tenant kaiwa.TenantID, word string) (kaiwa.NGList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return kaiwa.NGList{}, f.Fail
	}
	cur := f.lists[tenant]
	if cur == nil || !slices.Contains(cur.Words, word) && !slices.Contains(cur.Allow, word) {
		return kaiwa.NGList{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no entry %q", word)
	}
	cur.Words = slices.DeleteFunc(cur.Words, func(w string) bool { return w == word })
	cur.Allow = slices.DeleteFunc(cur.Allow, func(w string) bool { return w == word })
	return f.list(ctx, tenant)
}

// uniq appends the entries of add not yet in list, in order.
func uniq(list, add []string) []string {
	for _, w := range add {
		if !slices.Contains(list, w) {
			list = append(list, w)
		}
	}
	if list == nil {
		list = []string{}
	}
	return list
}

// fakeSanctions keeps bans and mutes per tenant and user.
type fakeSanctions struct {
	mu        sync.Mutex
	sanctions map[kaiwa.TenantID]map[string]map[kaiwa.SanctionKind]kaiwa.Sanction
	Fail      error
}

func newFakeSanctions() *fakeSanctions {
	return &fakeSanctions{sanctions: map[kaiwa.TenantID]map[string]map[kaiwa.SanctionKind]kaiwa.Sanction{}}
}

func (f *fakeSanctions) PutSanction(ctx context.Context, s kaiwa.Sanction) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	if f.sanctions[s.Tenant] == nil {
		f.sanctions[s.Tenant] = map[string]map[kaiwa.SanctionKind]kaiwa.Sanction{}
	}
	if f.sanctions[s.Tenant][s.User] == nil {
		f.sanctions[s.Tenant][s.User] = map[kaiwa.SanctionKind]kaiwa.Sanction{}
	}
	s.CreatedAt = s.CreatedAt.UTC().Truncate(time.Second)
	s.Until = s.Until.UTC().Truncate(time.Second)
	f.sanctions[s.Tenant][s.User][s.Kind] = s
	return nil
}

func (f *fakeSanctions) DeleteSanction(ctx context.Context, tenant kaiwa.TenantID, user string, kind kaiwa.SanctionKind) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	if _, ok := f.sanctions[tenant][user][kind]; !ok {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no %s of %s", kind, user)
	}
	delete(f.sanctions[tenant][user], kind)
	return nil
}

func (f *fakeSanctions) Sanctions(ctx context.Context, tenant kaiwa.TenantID, user string) ([]kaiwa.Sanction, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return nil, f.Fail
	}
	out := []kaiwa.Sanction{}
	now := time.Now()
	for _, s := range f.sanctions[tenant][user] {
		if s.Active(now) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out, nil
}

// fakeEvents is the event log and its recorder: a recorded event is in the
// log at once, with an id.
type fakeEvents struct {
	mu     sync.Mutex
	events []kaiwa.Event
	n      int
	// Last is the query of the latest Events call.
	Last kaiwa.EventQuery
	Fail error
}

func (f *fakeEvents) Record(e kaiwa.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	e.ID = fmt.Sprintf("e%d", f.n)
	f.events = append(f.events, e)
}

func (f *fakeEvents) AppendEvents(ctx context.Context, events []kaiwa.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, events...)
	return nil
}

func (f *fakeEvents) Events(ctx context.Context, tenant kaiwa.TenantID, q kaiwa.EventQuery) (kaiwa.EventPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Last = q
	if f.Fail != nil {
		return kaiwa.EventPage{}, f.Fail
	}
	end := len(f.events)
	if q.Before != "" {
		i := slices.IndexFunc(f.events, func(e kaiwa.Event) bool { return e.Tenant == tenant && e.ID == q.Before })
		if i < 0 {
			return kaiwa.EventPage{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "unknown event id %q", q.Before)
		}
		end = i
	}
	page := kaiwa.EventPage{Events: []kaiwa.Event{}}
	for i := end - 1; i >= 0; i-- {
		e := f.events[i]
		switch {
		case e.Tenant != tenant,
			q.Type != "" && e.Type != q.Type,
			q.User != "" && e.User != q.User,
			q.Channel != "" && e.Channel != q.Channel,
			!q.Since.IsZero() && e.TS < q.Since.UnixMilli(),
			!q.Until.IsZero() && e.TS >= q.Until.UnixMilli():
			continue
		}
		if len(page.Events) == q.Limit {
			page.Next = page.Events[len(page.Events)-1].ID
			break
		}
		page.Events = append(page.Events, e)
	}
	return page, nil
}

// ofTenant returns the tenant's recorded events, oldest first.
func (f *fakeEvents) ofTenant(tenant kaiwa.TenantID) []kaiwa.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kaiwa.Event
	for _, e := range f.events {
		if e.Tenant == tenant {
			out = append(out, e)
		}
	}
	return out
}
