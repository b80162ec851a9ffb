package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Node is one server process as its heartbeat describes it, what
// "kaiwa nodes" lists. Each process puts its own under its name in the
// nodes bucket (a JetStream key-value bucket, [Config.NodesBucket]) every
// heartbeat interval, and a last one with State "stopped" when it stops.
type Node struct {
	// Name is unique in the deployment: host and process ("ua1/ua-v1-0").
	Name string `json:"name"`
	// Role is "ua", "api" or "logwriter".
	Role string `json:"role"`
	// Build is the kaiwa build (git describe) the process runs.
	Build string `json:"build"`
	// Protocol is the protocol or API version served, if any.
	Protocol string `json:"protocol,omitempty"`
	Host     string `json:"host"`
	PID      int    `json:"pid"`
	// State is "serving", "draining", "fenced" (a UA that lost the bus)
	// or "stopped".
	State string `json:"state"`
	// Sessions is a UA's open WebSocket sessions.
	Sessions int       `json:"sessions"`
	Started  time.Time `json:"started"`
	// EveryMS is the process's heartbeat interval in milliseconds.
	EveryMS int64 `json:"every_ms"`
	// Seen is when the bus stored the node's last heartbeat (the NATS
	// server's clock); set by [Bus.Nodes], not sent.
	Seen time.Time `json:"seen"`
}

// Node states.
const (
	NodeServing  = "serving"
	NodeDraining = "draining"
	NodeFenced   = "fenced"
	NodeStopped  = "stopped"
)

// nodesTTL is how long a node stays listed after its last heartbeat.
const nodesTTL = 24 * time.Hour

// nodeKey turns a node name into a key of the bucket: characters a key
// cannot hold become "_".
func nodeKey(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-/_=.", r) {
			return r
		}
		return '_'
	}, name)
}

// Heartbeat puts n in the nodes bucket now and every interval, with the
// fields update sets (state, sessions) each time, until the returned
// stop is called; stop puts it once more with State "stopped" and
// returns when that is done or has failed. A heartbeat that cannot be
// stored (the bus is down) is skipped: the next one tries again.
func (b *Bus) Heartbeat(n Node, every time.Duration, update func(*Node)) (stop func()) {
	n.EveryMS = every.Milliseconds()
	if n.Started.IsZero() {
		n.Started = time.Now().UTC()
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var kv jetstream.KeyValue
	put := func(final bool) {
		ctx, cancel := b.timeout(context.Background())
		defer cancel()
		if kv == nil {
			var err error
			if kv, err = b.nodesBucket(ctx); err != nil {
				b.log.Debug("heartbeat: nodes bucket", "err", err)
				return
			}
		}
		cur := n
		if update != nil {
			update(&cur)
		}
		if final {
			cur.State = NodeStopped
		}
		data, err := json.Marshal(cur)
		if err != nil {
			return
		}
		if _, err := kv.Put(ctx, nodeKey(cur.Name), data); err != nil {
			b.log.Debug("heartbeat", "err", err)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			put(false)
			select {
			case <-quit:
				put(true)
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		wg.Wait()
	}
}

// nodesBucket creates the nodes bucket, or updates it to this bus's
// replicas.
func (b *Bus) nodesBucket(ctx context.Context) (jetstream.KeyValue, error) {
	return b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.cfg.NodesBucket,
		Description: "Kaiwa server processes' heartbeats (kaiwa nodes)",
		History:     1,
		TTL:         nodesTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
	})
}

// Nodes returns every node whose heartbeat the bucket holds (those of the
// last day), by name, with Seen set.
func (b *Bus) Nodes(ctx context.Context) ([]Node, error) {
	kv, err := b.js.KeyValue(ctx, b.cfg.NodesBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable("nodes bucket", err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, unavailable("list nodes", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Node, 0, len(keys))
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, unavailable("read node", err)
		}
		var n Node
		if err := json.Unmarshal(e.Value(), &n); err != nil {
			return nil, fmt.Errorf("node %s: %w", k, err)
		}
		n.Seen = e.Created()
		out = append(out, n)
	}
	return out, nil
}
