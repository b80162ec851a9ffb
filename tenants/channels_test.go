package tenants

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func put(t testing.TB, s *Store, ch kaiwa.Channel) bool {
	t.Helper()
	created, err := s.PutChannel(context.Background(), ch)
	if err != nil {
		t.Fatalf("put channel %s: %v", ch.Name, err)
	}
	return created
}

func TestPutAndGetChannel(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")

	title := `Guild "Ω" — it's \ 🐉 '; DROP TABLE channels; --`
	if !put(t, s, kaiwa.Channel{Tenant: "a", Name: "guild.1", Title: title}) {
		t.Fatal("first put did not create")
	}
	ch, err := s.Channel(ctx, "a", "guild.1")
	must(t, err)
	if ch.Tenant != "a" || ch.Name != "guild.1" || ch.Kind != kaiwa.ChannelOpen || ch.Title != title || time.Since(ch.CreatedAt) > time.Minute {
		t.Fatalf("channel = %+v", ch)
	}
	if put(t, s, kaiwa.Channel{Tenant: "a", Name: "guild.1", Kind: kaiwa.ChannelClosed, Title: "x"}) {
		t.Fatal("second put reported created")
	}
	if put(t, s, kaiwa.Channel{Tenant: "a", Name: "guild.1", Kind: kaiwa.ChannelClosed, Title: "x"}) {
		t.Fatal("unchanged put reported created")
	}
	ch2, err := s.Channel(ctx, "a", "guild.1")
	must(t, err)
	if ch2.Kind != kaiwa.ChannelClosed || ch2.Title != "x" || !ch2.CreatedAt.Equal(ch.CreatedAt) {
		t.Fatalf("updated channel = %+v", ch2)
	}

	// Case-sensitive names: "Guild.1" is another channel.
	_, err = s.Channel(ctx, "a", "Guild.1")
	wantCode(t, err, kaiwa.CodeNotFound)
	if !put(t, s, kaiwa.Channel{Tenant: "a", Name: "Guild.1"}) {
		t.Fatal("Guild.1 was not created next to guild.1")
	}

	for _, bad := range []kaiwa.Channel{
		{Tenant: "a", Name: ""},
		{Tenant: "a", Name: "has space"},
		{Tenant: "a", Name: strings.Repeat("c", kaiwa.MaxChannelLen+1)},
		{Tenant: "a", Name: "x", Kind: "secret"},
		{Tenant: "a", Name: "x", Title: strings.Repeat("t", kaiwa.MaxTitleLen+1)},
		{Tenant: "a", Name: "x", Title: "\xc3"},
		{Tenant: "a", Name: "dm:alice:bob"},
		{Tenant: "a", Name: "dm:whatever"},
		{Tenant: "", Name: "x"},
	} {
		_, err := s.PutChannel(ctx, bad)
		wantCode(t, err, kaiwa.CodeBadRequest)
	}
	_, err = s.PutChannel(ctx, kaiwa.Channel{Tenant: "nosuch", Name: "x"})
	wantCode(t, err, kaiwa.CodeNotFound)
	if _, err := s.PutChannel(ctx, kaiwa.Channel{Tenant: "a", Name: "t", Title: strings.Repeat("題", kaiwa.MaxTitleLen)}); err != nil {
		t.Fatalf("a title of %d characters: %v", kaiwa.MaxTitleLen, err)
	}

	// Direct channels exist implicitly, closed; malformed ones are refused.
	dm, err := s.Channel(ctx, "a", "dm:alice:bob")
	must(t, err)
	if dm != (kaiwa.Channel{Tenant: "a", Name: "dm:alice:bob", Kind: kaiwa.ChannelClosed}) {
		t.Fatalf("direct channel = %+v", dm)
	}
	for _, bad := range []string{"dm:bob:alice", "dm:alice", "dm:alice:alice", "bad name"} {
		_, err := s.Channel(ctx, "a", bad)
		wantCode(t, err, kaiwa.CodeBadRequest)
	}
	_, err = s.Channel(ctx, "a", "nosuch")
	wantCode(t, err, kaiwa.CodeNotFound)
}

func TestMembership(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	put(t, s, kaiwa.Channel{Tenant: "a", Name: "guild.1", Kind: kaiwa.ChannelClosed})
	put(t, s, kaiwa.Channel{Tenant: "a", Name: "guild.2"})

	members := func(ch string) []string {
		t.Helper()
		m, err := s.Members(ctx, "a", ch)
		must(t, err)
		return m
	}
	if m := members("guild.1"); m == nil || len(m) != 0 {
		t.Fatalf("members of an empty channel = %#v, want empty", m)
	}
	for _, u := range []string{"carol", "alice", "Bob", "bob"} {
		added, err := s.AddMember(ctx, "a", "guild.1", u)
		if err != nil || !added {
			t.Fatalf("AddMember %s = %v, %v", u, added, err)
		}
	}
	added, err := s.AddMember(ctx, "a", "guild.1", "alice")
	if err != nil || added {
		t.Fatalf("AddMember again = %v, %v; want false", added, err)
	}
	_, err = s.AddMember(ctx, "a", "guild.2", "alice")
	must(t, err)
	if got := members("guild.1"); !reflect.DeepEqual(got, []string{"Bob", "alice", "bob", "carol"}) {
		t.Fatalf("members = %v", got)
	}

	isMember := func(ch, user string) bool {
		t.Helper()
		ok, err := s.IsMember(ctx, "a", ch, user)
		must(t, err)
		return ok
	}
	if !isMember("guild.1", "alice") || isMember("guild.1", "Alice") || isMember("guild.1", "dave") || isMember("nosuch", "alice") {
		t.Fatal("IsMember is wrong")
	}
	if !isMember("dm:alice:bob", "alice") || !isMember("dm:alice:bob", "bob") || isMember("dm:alice:bob", "carol") {
		t.Fatal("IsMember of a direct channel is wrong")
	}
	chans, err := s.MemberChannels(ctx, "a", "alice")
	if err != nil || !reflect.DeepEqual(chans, []string{"guild.1", "guild.2"}) {
		t.Fatalf("MemberChannels = %v, %v", chans, err)
	}
	chans, err = s.MemberChannels(ctx, "a", "nobody")
	if err != nil || chans == nil || len(chans) != 0 {
		t.Fatalf("MemberChannels of nobody = %#v, %v", chans, err)
	}
	if got := members("dm:alice:bob"); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Fatalf("members of a direct channel = %v", got)
	}

	must(t, s.RemoveMember(ctx, "a", "guild.1", "carol"))
	wantCode(t, s.RemoveMember(ctx, "a", "guild.1", "carol"), kaiwa.CodeNotFound)
	if isMember("guild.1", "carol") {
		t.Fatal("carol is still a member")
	}

	_, err = s.AddMember(ctx, "a", "nosuch", "alice")
	wantCode(t, err, kaiwa.CodeNotFound)
	_, err = s.Members(ctx, "a", "nosuch")
	wantCode(t, err, kaiwa.CodeNotFound)
	_, err = s.AddMember(ctx, "a", "dm:alice:bob", "carol")
	wantCode(t, err, kaiwa.CodeBadRequest)
	wantCode(t, s.RemoveMember(ctx, "a", "dm:alice:bob", "alice"), kaiwa.CodeBadRequest)
	_, err = s.AddMember(ctx, "a", "guild.1", "bad user")
	wantCode(t, err, kaiwa.CodeBadRequest)
	_, err = s.IsMember(ctx, "a", "guild.1", "")
	wantCode(t, err, kaiwa.CodeBadRequest)

	// Deleting a channel removes its members with it.
	must(t, s.DeleteChannel(ctx, "a", "guild.1"))
	wantCode(t, s.DeleteChannel(ctx, "a", "guild.1"), kaiwa.CodeNotFound)
	wantCode(t, s.DeleteChannel(ctx, "a", "dm:alice:bob"), kaiwa.CodeBadRequest)
	_, err = s.Channel(ctx, "a", "guild.1")
	wantCode(t, err, kaiwa.CodeNotFound)
	if isMember("guild.1", "alice") {
		t.Fatal("membership survived the channel")
	}
	chans, err = s.MemberChannels(ctx, "a", "alice")
	if err != nil || !reflect.DeepEqual(chans, []string{"guild.2"}) {
		t.Fatalf("MemberChannels after delete = %v, %v", chans, err)
	}
	// A channel made again under the same name starts empty.
	put(t, s, kaiwa.Channel{Tenant: "a", Name: "guild.1"})
	if m := members("guild.1"); len(m) != 0 {
		t.Fatalf("recreated channel has members %v", m)
	}
}

func TestChannelsAreIsolatedByTenant(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	newTenant(t, s, "b")
	put(t, s, kaiwa.Channel{Tenant: "a", Name: "lobby", Title: "A's lobby"})
	_, err := s.AddMember(ctx, "a", "lobby", "alice")
	must(t, err)

	// b sees nothing of a's channel and cannot change it.
	_, err = s.Channel(ctx, "b", "lobby")
	wantCode(t, err, kaiwa.CodeNotFound)
	_, err = s.AddMember(ctx, "b", "lobby", "mallory")
	wantCode(t, err, kaiwa.CodeNotFound)
	wantCode(t, s.RemoveMember(ctx, "b", "lobby", "alice"), kaiwa.CodeNotFound)
	wantCode(t, s.DeleteChannel(ctx, "b", "lobby"), kaiwa.CodeNotFound)
	if ok, err := s.IsMember(ctx, "b", "lobby", "alice"); err != nil || ok {
		t.Fatalf("b sees a's member: %v, %v", ok, err)
	}
	if chans, err := s.MemberChannels(ctx, "b", "alice"); err != nil || len(chans) != 0 {
		t.Fatalf("b sees a's memberships: %v, %v", chans, err)
	}

	// The same name in b is a separate channel.
	if !put(t, s, kaiwa.Channel{Tenant: "b", Name: "lobby", Kind: kaiwa.ChannelClosed, Title: "B's lobby"}) {
		t.Fatal("b's lobby was not created")
	}
	_, err = s.AddMember(ctx, "b", "lobby", "bob")
	must(t, err)
	must(t, s.DeleteChannel(ctx, "b", "lobby"))
	ch, err := s.Channel(ctx, "a", "lobby")
	if err != nil || ch.Title != "A's lobby" || ch.Kind != kaiwa.ChannelOpen {
		t.Fatalf("a's lobby after b's changes = %+v, %v", ch, err)
	}
	if m, err := s.Members(ctx, "a", "lobby"); err != nil || !reflect.DeepEqual(m, []string{"alice"}) {
		t.Fatalf("a's members after b's changes = %v, %v", m, err)
	}
}

func TestChannelsList(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	newTenant(t, s, "b")
	for _, ch := range []kaiwa.Channel{
		{Tenant: "a", Name: "lobby", Title: "Lobby"},
		{Tenant: "a", Name: "guild.2", Kind: kaiwa.ChannelClosed},
		{Tenant: "a", Name: "Guild.1", Kind: kaiwa.ChannelClosed},
		{Tenant: "a", Name: "guild.10"},
		{Tenant: "b", Name: "b-only", Kind: kaiwa.ChannelClosed},
	} {
		put(t, s, ch)
	}
	names := func(tenant kaiwa.TenantID, kind kaiwa.ChannelKind) []string {
		t.Helper()
		list, err := s.Channels(ctx, tenant, kind)
		must(t, err)
		out := []string{}
		for _, c := range list {
			if c.Tenant != tenant || c.CreatedAt.IsZero() {
				t.Fatalf("listed channel %+v", c)
			}
			out = append(out, c.Name)
		}
		return out
	}
	for kind, want := range map[kaiwa.ChannelKind][]string{
		"":                  {"Guild.1", "guild.10", "guild.2", "lobby"},
		kaiwa.ChannelOpen:   {"guild.10", "lobby"},
		kaiwa.ChannelClosed: {"Guild.1", "guild.2"},
	} {
		if got := names("a", kind); !reflect.DeepEqual(got, want) {
			t.Errorf("Channels(a, %q) = %v, want %v", kind, got, want)
		}
	}
	list, err := s.Channels(ctx, "a", kaiwa.ChannelOpen)
	must(t, err)
	if list[1].Title != "Lobby" || list[1].Kind != kaiwa.ChannelOpen {
		t.Fatalf("lobby listed as %+v", list[1])
	}
	if got := names("b", ""); !reflect.DeepEqual(got, []string{"b-only"}) {
		t.Fatalf("b lists %v", got)
	}
	if got := names("nosuch", ""); len(got) != 0 {
		t.Fatalf("an unknown tenant lists %v", got)
	}
	_, err = s.Channels(ctx, "a", "secret")
	wantCode(t, err, kaiwa.CodeBadRequest)
	_, err = s.Channels(ctx, "bad id", "")
	wantCode(t, err, kaiwa.CodeBadRequest)
}

func TestAddMemberRespectsTheTenantLimit(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	newTenant(t, s, "b")
	must(t, s.SetTenantSettings(ctx, "a", kaiwa.Settings{MaxChannelMembers: 3}))
	put(t, s, kaiwa.Channel{Tenant: "a", Name: "party"})
	put(t, s, kaiwa.Channel{Tenant: "b", Name: "party"})

	for _, u := range []string{"u1", "u2", "u3"} {
		if added, err := s.AddMember(ctx, "a", "party", u); err != nil || !added {
			t.Fatalf("AddMember %s = %v, %v", u, added, err)
		}
	}
	_, err := s.AddMember(ctx, "a", "party", "u4")
	wantCode(t, err, kaiwa.CodeTooLarge)
	// A member already in a full channel is no error.
	if added, err := s.AddMember(ctx, "a", "party", "u2"); err != nil || added {
		t.Fatalf("AddMember of a member of a full channel = %v, %v", added, err)
	}
	// Leaving makes room.
	must(t, s.RemoveMember(ctx, "a", "party", "u1"))
	wantCode(t, s.RemoveMember(ctx, "a", "party", "u1"), kaiwa.CodeNotFound)
	if added, err := s.AddMember(ctx, "a", "party", "u4"); err != nil || !added {
		t.Fatalf("AddMember after a leave = %v, %v", added, err)
	}
	_, err = s.AddMember(ctx, "a", "party", "u5")
	wantCode(t, err, kaiwa.CodeTooLarge)
	// The limit is a's: b's channel of the same name takes more.
	for i := range 5 {
		if _, err := s.AddMember(ctx, "b", "party", fmt.Sprintf("u%d", i)); err != nil {
			t.Fatalf("b's channel: %v", err)
		}
	}
	// A channel deleted and made again starts from zero.
	must(t, s.DeleteChannel(ctx, "a", "party"))
	put(t, s, kaiwa.Channel{Tenant: "a", Name: "party"})
	for _, u := range []string{"x1", "x2", "x3"} {
		if _, err := s.AddMember(ctx, "a", "party", u); err != nil {
			t.Fatalf("AddMember %s to the new channel: %v", u, err)
		}
	}

	// Concurrent additions never pass the limit.
	must(t, s.SetTenantSettings(ctx, "a", kaiwa.Settings{MaxChannelMembers: 10}))
	put(t, s, kaiwa.Channel{Tenant: "a", Name: "rush"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[kaiwa.Code]int{}
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AddMember(ctx, "a", "rush", fmt.Sprintf("r%02d", i))
			mu.Lock()
			codes[kaiwa.ErrorCode(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	m, err := s.Members(ctx, "a", "rush")
	must(t, err)
	if len(m) != 10 || codes[""] != 10 || codes[kaiwa.CodeTooLarge] != 20 {
		t.Fatalf("30 concurrent additions under a limit of 10: %d members, results %v", len(m), codes)
	}
}

func TestInboxChannelsExistImplicitly(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")

	ch, err := s.Channel(ctx, "a", "@bob")
	if err != nil || ch != (kaiwa.Channel{Tenant: "a", Name: "@bob", Kind: kaiwa.ChannelClosed}) {
		t.Fatalf("Channel(@bob) = %+v, %v", ch, err)
	}
	if m, err := s.Members(ctx, "a", "@bob"); err != nil || !reflect.DeepEqual(m, []string{"bob"}) {
		t.Fatalf("Members(@bob) = %v, %v", m, err)
	}
	for user, want := range map[string]bool{"bob": true, "Bob": false, "alice": false} {
		if ok, err := s.IsMember(ctx, "a", "@bob", user); err != nil || ok != want {
			t.Fatalf("IsMember(@bob, %s) = %v, %v", user, ok, err)
		}
	}
	_, err = s.PutChannel(ctx, kaiwa.Channel{Tenant: "a", Name: "@bob"})
	wantCode(t, err, kaiwa.CodeBadRequest)
	_, err = s.AddMember(ctx, "a", "@bob", "alice")
	wantCode(t, err, kaiwa.CodeBadRequest)
	wantCode(t, s.RemoveMember(ctx, "a", "@bob", "bob"), kaiwa.CodeBadRequest)
	wantCode(t, s.DeleteChannel(ctx, "a", "@bob"), kaiwa.CodeBadRequest)
	for _, bad := range []string{"@", "@bad user", "@" + strings.Repeat("u", kaiwa.MaxIDLen+1)} {
		_, err := s.Channel(ctx, "a", bad)
		wantCode(t, err, kaiwa.CodeBadRequest)
	}
	if list, err := s.Channels(ctx, "a", ""); err != nil || len(list) != 0 {
		t.Fatalf("Channels lists %v, %v", list, err)
	}
}
