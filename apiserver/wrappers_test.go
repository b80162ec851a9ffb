package apiserver

import (
	"context"
	"slices"
	"sync"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/tenants"
)

var (
	_ kaiwa.TenantStore     = (*faultyStore)(nil)
	_ kaiwa.TokenStore      = (*faultyStore)(nil)
	_ kaiwa.ChannelStore    = (*faultyStore)(nil)
	_ kaiwa.MessageLog      = (*faultyStore)(nil)
	_ kaiwa.NGStore         = (*faultyStore)(nil)
	_ kaiwa.ModerationStore = (*faultyStore)(nil)
	_ kaiwa.EventLog        = (*faultyStore)(nil)
	_ kaiwa.Publisher       = (*spyBus)(nil)
	_ kaiwa.Recorder        = (*spyRecorder)(nil)
)

// fault names a group of store calls a test can make fail.
type fault int

const (
	// failTenants: key authentication, the key calls and settings.
	failTenants fault = iota
	// failSettings: TenantSettings only.
	failSettings
	// failChannels: every channel and membership call.
	failChannels
	// failLog: reading the message log and deleting from it.
	failLog
	// failNG: every NG-list call.
	failNG
	// failSanctions: every ban and mute call.
	failSanctions
	// failEvents: reading the event log.
	failEvents
)

// faultyStore is the real store, with the failures a test sets per group
// of calls (and a panic for Members), counting what tests ask about.
type faultyStore struct {
	*tenants.Store

	mu            sync.Mutex
	faults        map[fault]error
	panicMembers  any
	settingsReads int
	issued        int
	lastMessages  kaiwa.MessageQuery
	lastEvents    kaiwa.EventQuery
}

// fail makes the calls of group f return err (nil: succeed again).
func (s *faultyStore) fail(f fault, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults == nil {
		s.faults = map[fault]error{}
	}
	s.faults[f] = err
}

// err returns the first failure set for any of the groups.
func (s *faultyStore) err(groups ...fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range groups {
		if err := s.faults[f]; err != nil {
			return err
		}
	}
	return nil
}

func (s *faultyStore) AuthenticateKey(ctx context.Context, key string) (kaiwa.TenantID, error) {
	if err := s.err(failTenants); err != nil {
		return "", err
	}
	return s.Store.AuthenticateKey(ctx, key)
}

func (s *faultyStore) TenantSettings(ctx context.Context, id kaiwa.TenantID) (kaiwa.Settings, error) {
	s.mu.Lock()
	s.settingsReads++
	s.mu.Unlock()
	if err := s.err(failTenants, failSettings); err != nil {
		return kaiwa.Settings{}, err
	}
	return s.Store.TenantSettings(ctx, id)
}

// reads returns how often TenantSettings was called.
func (s *faultyStore) reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settingsReads
}

func (s *faultyStore) APIKeys(ctx context.Context, id kaiwa.TenantID) ([]kaiwa.APIKey, error) {
	if err := s.err(failTenants); err != nil {
		return nil, err
	}
	return s.Store.APIKeys(ctx, id)
}

func (s *faultyStore) RotateKey(ctx context.Context, id kaiwa.TenantID) (string, error) {
	if err := s.err(failTenants); err != nil {
		return "", err
	}
	return s.Store.RotateKey(ctx, id)
}

func (s *faultyStore) RevokeKey(ctx context.Context, id kaiwa.TenantID, keyID int64) error {
	if err := s.err(failTenants); err != nil {
		return err
	}
	return s.Store.RevokeKey(ctx, id, keyID)
}

func (s *faultyStore) IssueToken(ctx context.Context, t kaiwa.TenantID, req kaiwa.TokenRequest) (kaiwa.IssuedToken, error) {
	tok, err := s.Store.IssueToken(ctx, t, req)
	if err == nil {
		s.mu.Lock()
		s.issued++
		s.mu.Unlock()
	}
	return tok, err
}

// tokensIssued returns how many tokens were issued through the store.
func (s *faultyStore) tokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

func (s *faultyStore) PutChannel(ctx context.Context, ch kaiwa.Channel) (bool, error) {
	if err := s.err(failChannels); err != nil {
		return false, err
	}
	return s.Store.PutChannel(ctx, ch)
}

func (s *faultyStore) DeleteChannel(ctx context.Context, t kaiwa.TenantID, ch string) error {
	if err := s.err(failChannels); err != nil {
		return err
	}
	return s.Store.DeleteChannel(ctx, t, ch)
}

func (s *faultyStore) Channel(ctx context.Context, t kaiwa.TenantID, ch string) (kaiwa.Channel, error) {
	if err := s.err(failChannels); err != nil {
		return kaiwa.Channel{}, err
	}
	return s.Store.Channel(ctx, t, ch)
}

func (s *faultyStore) AddMember(ctx context.Context, t kaiwa.TenantID, ch, user string) (bool, error) {
	if err := s.err(failChannels); err != nil {
		return false, err
	}
	return s.Store.AddMember(ctx, t, ch, user)
}

func (s *faultyStore) RemoveMember(ctx context.Context, t kaiwa.TenantID, ch, user string) error {
	if err := s.err(failChannels); err != nil {
		return err
	}
	return s.Store.RemoveMember(ctx, t, ch, user)
}

func (s *faultyStore) Members(ctx context.Context, t kaiwa.TenantID, ch string) ([]string, error) {
	s.mu.Lock()
	p := s.panicMembers
	s.mu.Unlock()
	if p != nil {
		panic(p)
	}
	if err := s.err(failChannels); err != nil {
		return nil, err
	}
	return s.Store.Members(ctx, t, ch)
}

// panicInMembers makes Members panic with v.
func (s *faultyStore) panicInMembers(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.panicMembers = v
}

func (s *faultyStore) Channels(ctx context.Context, t kaiwa.TenantID, kind kaiwa.ChannelKind) ([]kaiwa.Channel, error) {
	if err := s.err(failChannels); err != nil {
		return nil, err
	}
	return s.Store.Channels(ctx, t, kind)
}

func (s *faultyStore) Messages(ctx context.Context, t kaiwa.TenantID, q kaiwa.MessageQuery) (kaiwa.MessagePage, error) {
	s.mu.Lock()
	s.lastMessages = q
	s.mu.Unlock()
	if err := s.err(failLog); err != nil {
		return kaiwa.MessagePage{}, err
	}
	return s.Store.Messages(ctx, t, q)
}

// lastMessageQuery returns the query of the latest Messages call.
func (s *faultyStore) lastMessageQuery() kaiwa.MessageQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastMessages
}

func (s *faultyStore) DeleteMessage(ctx context.Context, t kaiwa.TenantID, ch, id string, pending bool) (bool, error) {
	if err := s.err(failLog); err != nil {
		return false, err
	}
	return s.Store.DeleteMessage(ctx, t, ch, id, pending)
}

func (s *faultyStore) NGList(ctx context.Context, t kaiwa.TenantID) (kaiwa.NGList, error) {
	if err := s.err(failNG); err != nil {
		return kaiwa.NGList{}, err
	}
	return s.Store.NGList(ctx, t)
}

func (s *faultyStore) PutNGList(ctx context.Context, t kaiwa.TenantID, l kaiwa.NGList) (kaiwa.NGList, error) {
	if err := s.err(failNG); err != nil {
		return kaiwa.NGList{}, err
	}
	return s.Store.PutNGList(ctx, t, l)
}

func (s *faultyStore) AddNGWords(ctx context.Context, t kaiwa.TenantID, l kaiwa.NGList) (kaiwa.NGList, error) {
	if err := s.err(failNG); err != nil {
		return kaiwa.NGList{}, err
	}
	return s.Store.AddNGWords(ctx, t, l)
}

func (s *faultyStore) DeleteNGWord(ctx context.Context, t kaiwa.TenantID, w string) (kaiwa.NGList, error) {
	if err := s.err(failNG); err != nil {
		return kaiwa.NGList{}, err
	}
	return s.Store.DeleteNGWord(ctx, t, w)
}

func (s *faultyStore) PutSanction(ctx context.Context, sn kaiwa.Sanction) error {
	if err := s.err(failSanctions); err != nil {
		return err
	}
	return s.Store.PutSanction(ctx, sn)
}

func (s *faultyStore) DeleteSanction(ctx context.Context, t kaiwa.TenantID, user string, kind kaiwa.SanctionKind) error {
	if err := s.err(failSanctions); err != nil {
		return err
	}
	return s.Store.DeleteSanction(ctx, t, user, kind)
}

func (s *faultyStore) Sanctions(ctx context.Context, t kaiwa.TenantID, user string) ([]kaiwa.Sanction, error) {
	if err := s.err(failSanctions); err != nil {
		return nil, err
	}
	return s.Store.Sanctions(ctx, t, user)
}

func (s *faultyStore) Events(ctx context.Context, t kaiwa.TenantID, q kaiwa.EventQuery) (kaiwa.EventPage, error) {
	s.mu.Lock()
	s.lastEvents = q
	s.mu.Unlock()
	if err := s.err(failEvents); err != nil {
		return kaiwa.EventPage{}, err
	}
	return s.Store.Events(ctx, t, q)
}

// lastEventQuery returns the query of the latest Events call.
func (s *faultyStore) lastEventQuery() kaiwa.EventQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastEvents
}

// spyBus is the real bus as the API publishes to it: it keeps what was
// published through it, and fails when a test says so.
type spyBus struct {
	b *bus.Bus

	mu       sync.Mutex
	controls []kaiwa.Control
	messages []kaiwa.Message
	// failure fails every call; controlFailure only PublishControl.
	failure        error
	controlFailure error
	// failAfter, when positive, lets that many more publishes through
	// before failure applies to Publish; passed is closed once they are
	// published, and the publishes that fail wait for it, so that "how
	// far it got" does not depend on which publish came first.
	failAfter int
	passed    chan struct{}
}

// fail makes every call fail with err (nil: succeed again).
func (s *spyBus) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = err
}

// failAfterN makes Publish fail with err after n more publishes.
func (s *spyBus) failAfterN(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure, s.failAfter, s.passed = err, n, make(chan struct{})
}

// failControls makes PublishControl fail with err (nil: succeed again).
func (s *spyBus) failControls(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.controlFailure = err
}

// PublishBatch publishes through the bus's batch when no failure is set,
// else one message at a time through Publish and its failures.
func (s *spyBus) PublishBatch(ctx context.Context, msgs []kaiwa.Message) ([]kaiwa.Message, []error) {
	s.mu.Lock()
	failing := s.failure != nil
	s.mu.Unlock()
	out := make([]kaiwa.Message, len(msgs))
	errs := make([]error, len(msgs))
	if failing {
		for i, m := range msgs {
			out[i], errs[i] = s.Publish(ctx, m)
		}
		return out, errs
	}
	out, errs = s.b.PublishBatch(ctx, msgs)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range out {
		if errs[i] == nil {
			s.messages = append(s.messages, m)
		}
	}
	return out, errs
}

func (s *spyBus) Publish(ctx context.Context, m kaiwa.Message) (kaiwa.Message, error) {
	s.mu.Lock()
	var err error
	counted := s.failAfter > 0
	if counted {
		s.failAfter--
	} else {
		err = s.failure
	}
	passed := s.passed
	s.mu.Unlock()
	if err != nil {
		if passed != nil {
			select {
			case <-passed:
			case <-ctx.Done():
			}
		}
		return kaiwa.Message{}, err
	}
	m, err = s.b.Publish(ctx, m)
	s.mu.Lock()
	if err == nil {
		s.messages = append(s.messages, m)
	}
	if counted && s.failAfter == 0 && s.passed != nil {
		close(s.passed)
		s.passed = nil
	}
	s.mu.Unlock()
	return m, err
}

func (s *spyBus) PublishControl(ctx context.Context, c kaiwa.Control) error {
	s.mu.Lock()
	err := s.failure
	if err == nil {
		err = s.controlFailure
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.b.PublishControl(ctx, c); err != nil {
		return err
	}
	s.mu.Lock()
	s.controls = append(s.controls, c)
	s.mu.Unlock()
	return nil
}

func (s *spyBus) DeleteMessage(ctx context.Context, t kaiwa.TenantID, ch, id string) error {
	s.mu.Lock()
	err := s.failure
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.b.DeleteMessage(ctx, t, ch, id)
}

// Controls returns the controls published so far.
func (s *spyBus) Controls() []kaiwa.Control {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.controls)
}

// Messages returns the messages published so far.
func (s *spyBus) Messages() []kaiwa.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// spyRecorder keeps the events recorded through it and passes them on to
// the bus, whose log writer puts them in the event log.
type spyRecorder struct {
	to kaiwa.Recorder

	mu     sync.Mutex
	events []kaiwa.Event
}

func (r *spyRecorder) Record(e kaiwa.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.to.Record(e)
}

// ofTenant returns the tenant's recorded events, oldest first.
func (r *spyRecorder) ofTenant(tenant kaiwa.TenantID) []kaiwa.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []kaiwa.Event
	for _, e := range r.events {
		if e.Tenant == tenant {
			out = append(out, e)
		}
	}
	return out
}
