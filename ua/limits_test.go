package ua_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
)

// flood has every connection send n messages to ch at once and returns
// how many were accepted and how long it took; every refusal must be
// rate_limited with a time to retry after.
func flood(t *testing.T, conns []*client.Conn, ch string, n int) (accepted int, took time.Duration) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := c.Say(ctx, ch, fmt.Sprintf("flood %d", i), nil)
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					accepted++
				case !kaiwa.IsCode(err, kaiwa.CodeRateLimited) || !strings.Contains(kaiwa.ErrorMessage(err), "retry after"):
					t.Errorf("refused with %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return accepted, time.Since(start)
}

// TestTenantAndUserRatesAcrossUAs: a tenant flooding from 50 connections
// on two UAs is held to its budget (within the stated error: with two UAs
// at most 1.2 times it per window), while another tenant on the same UAs
// is unaffected; one user's rate holds over connections on both UAs.
func TestTenantAndUserRatesAcrossUAs(t *testing.T) {
	s := newStack(t)
	ua1, _ := s.startUA(nil)
	ua2, _ := s.UAOn(s.connect("ua2"), "v1", nil)
	s.channel("world", kaiwa.ChannelOpen)
	const budget = 20
	s.setSettings(kaiwa.Settings{TenantMsgsPerSec: budget})
	ctx := ctx5(t)
	var conns []*client.Conn
	for i := range 50 {
		url := ua1
		if i%2 == 1 {
			url = ua2
		}
		c := s.dial(url, fmt.Sprintf("u%d", i))
		if err := c.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The other tenant, on the same UAs.
	if _, err := s.store.CreateTenant(ctx, "other", "Other"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.PutChannel(ctx, kaiwa.Channel{Tenant: "other", Name: "world", Kind: kaiwa.ChannelOpen}); err != nil {
		t.Fatal(err)
	}
	tok, err := s.store.IssueToken(ctx, "other", kaiwa.TokenRequest{User: "o1", TTL: time.Hour, Join: []string{"*"}, Publish: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	other := dialToken(t, ua2, tok.Token)
	if err := other.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var otherOK int
	wg.Add(1)
	go func() { defer wg.Done(); otherOK, _ = flood(t, []*client.Conn{other}, "world", 15) }()
	accepted, took := flood(t, conns, "world", 6)
	wg.Wait()
	windows := math.Ceil(took.Seconds()) + 1
	bound := int(windows * (budget + budget*2/10)) // one other UA's unreported share
	if accepted > bound || accepted < 2*budget*2/10 {
		t.Errorf("the flooding tenant got %d of 300 messages through in %v, want at most %d (budget %d/s)", accepted, took, bound, budget)
	}
	if otherOK != 15 {
		t.Errorf("the other tenant got %d of 15 messages through", otherOK)
	}
	t.Logf("flood: %d of 300 accepted in %v (bound %d)", accepted, took, bound)

	// One user over three connections on both UAs.
	const perUser = 5
	s.setSettings(kaiwa.Settings{UserMsgsPerSec: perUser})
	time.Sleep(1100 * time.Millisecond) // the settings, and the window empties
	alice := []*client.Conn{s.dial(ua1, "alice"), s.dial(ua2, "alice"), s.dial(ua1, "alice")}
	for _, c := range alice {
		if err := c.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	accepted, took = flood(t, alice, "world", 6)
	windows = math.Ceil(took.Seconds()) + 1
	if bound := int(windows * (perUser + 1)); accepted > bound || accepted < 1 {
		t.Errorf("alice got %d of 18 messages through in %v, want at most %d", accepted, took, bound)
	}
}
