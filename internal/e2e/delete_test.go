package e2e

import (
	"fmt"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDeleteOfUnknownIDChangesNothing: deleting message ids that no
// message has yet answers 404 and leaves nothing behind, so the messages
// that later get those ids are logged like any other.
func TestDeleteOfUnknownIDChangesNothing(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	key := c.tenant("acme")
	c.must(201, "PUT", "/channels/world", key, map[string]any{"kind": "open"})
	c.must(201, "PUT", "/channels/guild", key, map[string]any{"kind": "open"})
	first := c.must(201, "POST", "/channels/world/messages", key, map[string]any{"text": "first"})["id"].(string)

	// Ids are "{epoch}-{seq}": name the next four before they exist, in
	// both channels.
	epoch, seq, ok := strings.Cut(first, "-")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		t.Fatalf("message id %q is not {epoch}-{seq}", first)
	}
	for i := uint64(1); i <= 4; i++ {
		next := fmt.Sprintf("%s-%d", epoch, n+i)
		for _, ch := range []string{"world", "guild"} {
			if status, body := c.api("DELETE", "/channels/"+ch+"/messages/"+next, key, nil); status != 404 {
				t.Fatalf("DELETE of unknown %s in %s = %d %v, want 404", next, ch, status, body)
			}
		}
	}

	sent := map[string]string{first: "first"}
	for i := range 6 {
		ch := []string{"world", "guild"}[i%2]
		text := fmt.Sprintf("later %d", i)
		id := c.must(201, "POST", "/channels/"+ch+"/messages", key, map[string]any{"text": text})["id"].(string)
		sent[id] = text
	}
	var missing []string
	testenv.Eventually(t, "every message in the log", 10*time.Second, func() bool {
		logged := map[string]string{}
		for _, ch := range []string{"world", "guild"} {
			for _, m := range c.logged(key, ch) {
				logged[m["id"].(string)], _ = m["text"].(string)
			}
		}
		missing = missing[:0]
		for id, text := range sent {
			if logged[id] != text {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	})
}
