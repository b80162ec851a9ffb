package ua_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/teststack"
)

// BenchmarkNeighbourSay is one say of a quiet tenant's player, from the
// frame sent to its acknowledgement, on a UA it shares with another tenant:
// alone ("quiet"), and while the other tenant floods from 50 connections,
// each at 100 messages a second (5,000 a second in all), far over its
// message budget of 20 a second ("flooded"). The two figures of one run
// show what a noisy neighbour costs the quiet tenant; the flooding
// tenant's admitted and refused messages are reported per say. The flood
// is paced as players' clients would send: unpaced, 50 connections in the
// benchmark's own process would take the cores from the server it
// measures.
func BenchmarkNeighbourSay(b *testing.B) {
	s := teststack.New(b)
	ctx := context.Background()
	s.Channel("world", kaiwa.ChannelOpen)
	if _, err := s.Store.CreateTenant(ctx, "noisy", "Noisy"); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Store.PutChannel(ctx, kaiwa.Channel{Tenant: "noisy", Name: "world", Kind: kaiwa.ChannelOpen}); err != nil {
		b.Fatal(err)
	}
	// The per-connection limits are lifted above what the benchmark sends,
	// so that only the noisy tenant's budget holds it back.
	lifted := kaiwa.Settings{RateOps: 100000, RateBurst: 100000}
	if err := s.Store.SetTenantSettings(ctx, s.Tenant, lifted); err != nil {
		b.Fatal(err)
	}
	budget := kaiwa.Settings{RateOps: 200, RateBurst: 200, TenantMsgsPerSec: 20}
	if err := s.Store.SetTenantSettings(ctx, "noisy", budget); err != nil {
		b.Fatal(err)
	}
	url, _ := s.UA("v2", nil)
	dial := func(tok string) *client.Conn {
		c, err := client.Dial(ctx, url, client.Options{Token: tok})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		go func() { // what the channel delivers is not measured
			for range c.Events() {
			}
		}()
		if err := c.Join(ctx, "world"); err != nil {
			b.Fatal(err)
		}
		return c
	}
	quiet := dial(s.Token("quiet", []string{"*"}, []string{"*"}))
	var noisy []*client.Conn
	for i := range 50 {
		tok, err := s.Store.IssueToken(ctx, "noisy", kaiwa.TokenRequest{User: fmt.Sprintf("n%d", i), TTL: time.Hour, Join: []string{"*"}, Publish: []string{"*"}})
		if err != nil {
			b.Fatal(err)
		}
		noisy = append(noisy, dial(tok.Token))
	}

	say := func(b *testing.B) {
		for b.Loop() {
			if _, err := quiet.Say(ctx, "world", "gg", nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("quiet", say)
	b.Run("flooded", func(b *testing.B) {
		fctx, stop := context.WithCancel(ctx)
		var (
			wg                sync.WaitGroup
			mu                sync.Mutex
			admitted, refused int
		)
		for _, c := range noisy {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for fctx.Err() == nil {
					select {
					case <-fctx.Done():
						return
					case <-tick.C:
					}
					_, err := c.Say(fctx, "world", "flood", nil)
					mu.Lock()
					switch {
					case err == nil:
						admitted++
					case kaiwa.IsCode(err, kaiwa.CodeRateLimited):
						refused++
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(200 * time.Millisecond) // the flood under way
		say(b)
		stop()
		wg.Wait()
		if refused == 0 {
			b.Fatalf("the noisy tenant was never held to its budget (%d admitted)", admitted)
		}
		b.ReportMetric(float64(admitted)/float64(b.N), "noisy-admitted/op")
		b.ReportMetric(float64(refused)/float64(b.N), "noisy-refused/op")
	})
}
