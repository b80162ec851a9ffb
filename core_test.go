package kaiwa_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/tenants"
)

// The core's rules are tested through the tenant API (apiserver) and the
// kaiwa command (cmd/kaiwa); these tests cover what neither shows: the
// actor, and the moderation the UAs ask for.

// recorded keeps the events the core records.
type recorded struct{ events []kaiwa.Event }

func (r *recorded) Record(e kaiwa.Event) { r.events = append(r.events, e) }

// newCore returns a core over a fresh database and NATS server, with a
// tenant "acme", and what it records.
func newCore(t *testing.T) (*kaiwa.Core, *recorded) {
	t.Helper()
	ctx := context.Background()
	store, err := tenants.Open(ctx, testenv.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	b, err := bus.Connect(ctx, bus.Config{URL: testenv.NATS(t), Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if _, err := store.CreateTenant(ctx, "acme", "Acme"); err != nil {
		t.Fatal(err)
	}
	rec := &recorded{}
	return &kaiwa.Core{
		Tenants: store, Tokens: store, Channels: store, Log: store, NG: store, Sanctions: store,
		Bus: b, Events: rec,
	}, rec
}

// actorOf returns the actor of an event.
func actorOf(t *testing.T, e kaiwa.Event) string {
	t.Helper()
	var d struct{ Actor string }
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		t.Fatalf("event %s: detail %s: %v", e.Type, e.Detail, err)
	}
	return d.Actor
}

func TestCoreRecordsTheActor(t *testing.T) {
	t.Parallel()
	core, rec := newCore(t)
	ctx := context.Background()
	const console = "console:7"
	if _, _, err := core.PutChannel(ctx, console, kaiwa.Channel{Tenant: "acme", Name: "world", Kind: kaiwa.ChannelOpen}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.AddMember(ctx, kaiwa.ActorAPI, "acme", "world", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := core.Kick(ctx, kaiwa.ActorCLI, "acme", "alice", "afk"); err != nil {
		t.Fatal(err)
	}
	// The UAs' moderation: the NG-word escalation mutes as the UA.
	if err := core.Moderation(kaiwa.ActorUA).Sanction(ctx, kaiwa.Sanction{
		Tenant: "acme", User: "alice", Kind: kaiwa.SanctionMute, Until: time.Now().Add(time.Minute), Reason: "repeated NG words",
	}); err != nil {
		t.Fatal(err)
	}
	want := []struct{ typ, actor string }{
		{kaiwa.EventChannelPut, console}, {kaiwa.EventMemberAdd, kaiwa.ActorAPI},
		{kaiwa.EventKick, kaiwa.ActorCLI}, {kaiwa.EventMute, kaiwa.ActorUA},
	}
	if len(rec.events) != len(want) {
		t.Fatalf("events %+v", rec.events)
	}
	for i, w := range want {
		if e := rec.events[i]; e.Type != w.typ || actorOf(t, e) != w.actor || e.Tenant != "acme" {
			t.Errorf("event %d: %s by %s (%s), want %s by %s", i, e.Type, actorOf(t, e), e.Detail, w.typ, w.actor)
		}
	}
}

func TestCoreRefusesAChangeWithoutActor(t *testing.T) {
	t.Parallel()
	core, rec := newCore(t)
	ctx := context.Background()
	_, _, err := core.PutChannel(ctx, "", kaiwa.Channel{Tenant: "acme", Name: "world", Kind: kaiwa.ChannelOpen})
	if !errors.Is(err, kaiwa.ErrNoActor) {
		t.Errorf("PutChannel without actor: %v", err)
	}
	if err := core.SetSettings(ctx, "", "acme", kaiwa.Settings{}); !errors.Is(err, kaiwa.ErrNoActor) {
		t.Errorf("SetSettings without actor: %v", err)
	}
	if _, err := core.Channels.Channel(ctx, "acme", "world"); !kaiwa.IsCode(err, kaiwa.CodeNotFound) {
		t.Errorf("the channel was made: %v", err)
	}
	if len(rec.events) != 0 {
		t.Errorf("events %+v", rec.events)
	}
}

// TestCoreRecordsWhatTheStoreChangedWhenThePublishFails checks that a
// change the store made is recorded even when its live change cannot be
// published, and that the retry, which finds it made, tells the UAs
// without recording it twice.
func TestCoreRecordsWhatTheStoreChangedWhenThePublishFails(t *testing.T) {
	t.Parallel()
	core, rec := newCore(t)
	ctx := context.Background()
	if _, _, err := core.PutChannel(ctx, kaiwa.ActorAPI, kaiwa.Channel{Tenant: "acme", Name: "world", Kind: kaiwa.ChannelOpen}); err != nil {
		t.Fatal(err)
	}
	live := core.Bus
	core.Bus = downBus{}
	if err := core.DeleteChannel(ctx, kaiwa.ActorAPI, "acme", "world"); !kaiwa.IsCode(err, kaiwa.CodeUnavailable) {
		t.Fatalf("delete with the bus down: %v", err)
	}
	core.Bus = live
	if err := core.DeleteChannel(ctx, kaiwa.ActorAPI, "acme", "world"); !kaiwa.IsCode(err, kaiwa.CodeNotFound) {
		t.Fatalf("retry: %v", err)
	}
	var deleted int
	for _, e := range rec.events {
		if e.Type == kaiwa.EventChannelDel {
			deleted++
		}
	}
	if deleted != 1 {
		t.Errorf("%d channel_deleted events, want 1: %+v", deleted, rec.events)
	}
}

// downBus is a bus that cannot be reached.
type downBus struct{}

func (downBus) Publish(context.Context, kaiwa.Message) (kaiwa.Message, error) {
	return kaiwa.Message{}, kaiwa.Errorf(kaiwa.CodeUnavailable, "bus down")
}

func (downBus) PublishControl(context.Context, kaiwa.Control) error {
	return kaiwa.Errorf(kaiwa.CodeUnavailable, "bus down")
}

func (downBus) DeleteMessage(context.Context, kaiwa.TenantID, string, string) error {
	return kaiwa.Errorf(kaiwa.CodeUnavailable, "bus down")
}

// oneByOneStore hides the store's batched player starts.
type oneByOneStore struct{ kaiwa.PlayerStore }

func TestCoreStartPlayersChecksEachRequest(t *testing.T) {
	t.Parallel()
	c, _ := newCore(t)
	store := c.Log.(*tenants.Store)
	c.Player = store
	ctx := context.Background()
	if _, err := store.Block(ctx, "acme", "alice", "bob", false); err != nil {
		t.Fatal(err)
	}
	tooMany := make([]string, kaiwa.MaxSearchChannels+1)
	for i := range tooMany {
		tooMany[i] = "lobby"
	}
	reqs := []kaiwa.PlayerStartRequest{
		{Tenant: "acme", User: "alice", Channels: []string{"lobby"}},
		{Tenant: "acme", User: "not a user id!"},
		{Tenant: "acme", User: "bob", Channels: []string{"bad channel!"}},
		{Tenant: "acme", User: "carol", Channels: tooMany},
		{Tenant: "acme", User: "bob"},
	}
	wantCodes := []kaiwa.Code{"", kaiwa.CodeBadRequest, kaiwa.CodeBadRequest, kaiwa.CodeTooLarge, ""}
	starter := c.Players(kaiwa.ActorUA).(kaiwa.PlayerStarter)
	batched := starter.StartPlayers(ctx, reqs)
	c.Player = oneByOneStore{store}
	single := c.Players(kaiwa.ActorUA).(kaiwa.PlayerStarter).StartPlayers(ctx, reqs)
	for i := range reqs {
		for _, res := range []kaiwa.PlayerStartResult{batched[i], single[i]} {
			if code := kaiwa.ErrorCode(res.Err); (res.Err == nil) != (wantCodes[i] == "") || (res.Err != nil && code != wantCodes[i]) {
				t.Errorf("request %d: error %v, want code %q", i, res.Err, wantCodes[i])
			}
		}
		if batched[i].Err == nil && !reflect.DeepEqual(batched[i].Start, single[i].Start) {
			t.Errorf("request %d: batched %+v, one by one %+v", i, batched[i].Start, single[i].Start)
		}
	}
	if b := batched[0].Start.Blocks; len(b) != 1 || b[0] != "bob" {
		t.Errorf("alice blocks %v", b)
	}
}
