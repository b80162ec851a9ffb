package bus

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// BenchmarkSessionLookup is a UA's session lookups answered by the API
// tier over an in-process NATS, from a directory that answers at once:
// the bus's own cost per connect (requests, replies, JSON, the batchers),
// with one lookup at a time and with many at once (a connect storm, where
// the UA's and the API's batches form). lookups/batch is the mean size of
// the batches the directory was asked.
func BenchmarkSessionLookup(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(fmt.Sprintf("concurrent=%d", par), func(b *testing.B) {
			url := testenv.NATS(b)
			connect := func() *Bus {
				bus, err := Connect(context.Background(), Config{URL: url, Name: b.Name()})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = bus.Close() })
				return bus
			}
			api, ua := connect(), connect()
			const users = 1024
			tokens := make([]string, users)
			d := &batchDirectory{good: map[string]string{}, gate: closedGate()}
			for i := range tokens {
				tokens[i] = kaiwa.NewCredential("acme")
				d.good[tokens[i]] = fmt.Sprint("u", i)
			}
			srv, err := api.ServeDirectory(d, nil, 8)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = srv.Unsubscribe() })
			dir := ua.Directory().(interface {
				ResolveSession(context.Context, string) (kaiwa.Identity, []kaiwa.Sanction, []string, error)
			})
			var next atomic.Int64
			b.SetParallelism(par)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tok := tokens[next.Add(1)%users]
					if id, _, _, err := dir.ResolveSession(context.Background(), tok); err != nil || id.User != d.good[tok] {
						b.Errorf("lookup: %+v, %v", id, err)
						return
					}
				}
			})
			b.StopTimer()
			sizes := d.batches()
			total := 0
			for _, s := range sizes {
				total += s
			}
			if len(sizes) > 0 {
				b.ReportMetric(float64(total)/float64(len(sizes)), "lookups/batch")
			}
		})
	}
}
