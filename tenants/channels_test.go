package tenants

import (
	"context"
	"reflect"
	"strings"
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
