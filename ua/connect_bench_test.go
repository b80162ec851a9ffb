package ua_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/teststack"
)

// BenchmarkConnect is a player's connect and disconnect on one v1 UA: the
// WebSocket upgrade, the token's lookup over the bus (the directory served
// from MySQL as an API process serves it, without its cache), the user
// room's subscriptions, the ready frame, then the close, its unsubscribes
// and its disconnect event. It reports this process's CPU per connect
// (cpu-µs/op: the UA, the directory's side of the API, NATS and the client;
// MySQL runs apart), one player at a time ("one") and 32 at once, as in a
// storm of reconnects, where lookups share their batches ("storm").
func BenchmarkConnect(b *testing.B) {
	s := teststack.New(b)
	ctx := context.Background()
	url, _ := s.UA("v1", nil)
	tokens := make([]string, 512)
	for i := range tokens {
		tokens[i] = s.Token(fmt.Sprintf("p%d", i), []string{"*"}, []string{"*"})
	}
	// A player who stays: the tenant's state (settings, NG list) stays
	// loaded on the UA, as it does while a title has players online.
	stay, err := client.Dial(ctx, url, client.Options{Token: s.Token("stay", []string{"*"}, []string{"*"})})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stay.Close() })
	var next atomic.Int64
	connect := func(b *testing.B) {
		c, err := client.Dial(ctx, url, client.Options{Token: tokens[next.Add(1)%int64(len(tokens))]})
		if err != nil {
			b.Error(err)
			return
		}
		if err := c.Close(); err != nil {
			b.Error(err)
		}
	}
	b.Run("one", func(b *testing.B) {
		start := cpuTime()
		for b.Loop() {
			connect(b)
		}
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	})
	b.Run("storm", func(b *testing.B) {
		b.SetParallelism(16) // 32 on two processors
		start := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				connect(b)
			}
		})
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	})
}
