package bus

import (
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// TestHeartbeatsListNodes: two processes' heartbeats are listed by name
// with their fields and when the bus last stored them; a stopped one says
// so, and stays listed.
func TestHeartbeatsListNodes(t *testing.T) {
	t.Parallel()
	url := testenv.NATS(t)
	ua, api, reader := newBus(t, url), newBus(t, url), newBus(t, url)
	sessions := 3
	stopUA := ua.Heartbeat(Node{Name: "host1/ua-v1-0", Role: "ua", Build: "test", Protocol: "v1", State: NodeServing}, 50*time.Millisecond,
		func(n *Node) { n.Sessions = sessions })
	stopAPI := api.Heartbeat(Node{Name: "host2/api v1", Role: "api", Build: "test", Protocol: "v1", State: NodeServing}, 50*time.Millisecond, nil)
	t.Cleanup(stopUA)
	var nodes []Node
	testenv.Eventually(t, "both nodes listed", 5*time.Second, func() bool {
		var err error
		nodes, err = reader.Nodes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return len(nodes) == 2
	})
	if nodes[0].Name != "host1/ua-v1-0" || nodes[0].Sessions != 3 || nodes[0].EveryMS != 50 || nodes[0].Seen.IsZero() ||
		time.Since(nodes[0].Seen) > 5*time.Second || nodes[0].Started.IsZero() {
		t.Errorf("ua node = %+v", nodes[0])
	}
	if nodes[1].Name != "host2/api v1" || nodes[1].Role != "api" || nodes[1].State != NodeServing {
		t.Errorf("api node = %+v", nodes[1])
	}
	stopAPI()
	nodes, err := reader.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[1].State != NodeStopped {
		t.Errorf("after stop: %+v", nodes)
	}
}

// TestNodesWithoutBucket: before any heartbeat there are no nodes, and
// no error.
func TestNodesWithoutBucket(t *testing.T) {
	t.Parallel()
	nodes, err := newBus(t, testenv.NATS(t)).Nodes(t.Context())
	if err != nil || len(nodes) != 0 {
		t.Errorf("Nodes = %v, %v", nodes, err)
	}
}
