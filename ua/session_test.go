package ua

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// TestV2OffersArriveOnceInOrder: ops given to a v2 session from several
// goroutines at once, some written directly and some queued and batched
// by the flusher, each arrive exactly once and in each giver's order.
func TestV2OffersArriveOnceInOrder(t *testing.T) {
	v := versions.Default().All()[1]
	_, ss, c := sessionPair(t, v, 64<<20)
	const givers, each = 8, 2000
	var wg sync.WaitGroup
	for g := range givers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ss.enqueue(fmt.Appendf(nil, `{"op":"t","g":%d,"i":%d}`, g, i))
				if i%500 == 0 {
					time.Sleep(time.Millisecond) // let the queue drain: the next goes directly
				}
			}
		}()
	}
	next := make([]int, givers)
	frames, ops := 0, 0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ops < givers*each {
		_, frame, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %d ops: %v", ops, err)
		}
		frames++
		env, err := versions.ReadEnvelope(frame, versions.V2MaxBatch)
		if err != nil {
			t.Fatalf("frame %q: %v", frame, err)
		}
		for _, raw := range env.Ops {
			var op struct{ G, I int }
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			if op.I != next[op.G] {
				t.Fatalf("giver %d: op %d arrived when %d was due", op.G, op.I, next[op.G])
			}
			next[op.G]++
			ops++
		}
	}
	wg.Wait()
	if frames == ops {
		t.Logf("%d ops in %d frames: none batched", ops, frames)
	}
}

// TestCoveredStart: the player state a session lookup brought serves only
// when it counts every joined channel, and then in the joined order.
func TestCoveredStart(t *testing.T) {
	known := &kaiwa.PlayerStart{Blocks: []string{"troll"}, Unread: []kaiwa.Unread{
		{Channel: "guild", Count: 2, Read: 5}, {Channel: "team", Count: 0, Read: 9}, {Channel: "raid", Count: 1}}}
	if _, ok := coveredStart(nil, []string{"guild"}); ok {
		t.Error("no state served")
	}
	st, ok := coveredStart(known, []string{"team", "guild"})
	want := kaiwa.PlayerStart{Blocks: []string{"troll"}, Unread: []kaiwa.Unread{known.Unread[1], known.Unread[0]}}
	if !ok || !reflect.DeepEqual(st, want) {
		t.Errorf("coveredStart = %+v, %v; want %+v", st, ok, want)
	}
	if _, ok := coveredStart(known, []string{"guild", "world"}); ok {
		t.Error("a state without world's count served a session in world")
	}
	if st, ok := coveredStart(known, nil); !ok || len(st.Unread) != 0 || st.Blocks[0] != "troll" {
		t.Errorf("no channels: %+v, %v", st, ok)
	}
}
