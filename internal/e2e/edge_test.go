package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kaiwa-chat/kaiwa/apiserver"
	"github.com/kaiwa-chat/kaiwa/nginx"
)

// TestEdgeAgreesWithTheAPI checks that nginx, as rendered by default,
// lets through what docs/api.md allows.
func TestEdgeAgreesWithTheAPI(t *testing.T) {
	if nginx.DefaultClientMaxBodyBytes != apiserver.DefaultNGBodyLimit {
		t.Errorf("nginx's body limit %d differs from the API's largest body %d", nginx.DefaultClientMaxBodyBytes, apiserver.DefaultNGBodyLimit)
	}
	c := newCluster(t, clusterOpts{})
	acme := c.tenant("acme")

	// An NG list of nearly 4 MiB in one call, as docs/api.md allows.
	words := make([]string, 55000)
	for i := range words {
		words[i] = fmt.Sprintf("w%063d", i)
	}
	list := c.must(200, "PUT", "/ngwords", acme, map[string]any{"words": words})
	if got := len(list["words"].([]any)); got != len(words) {
		t.Errorf("the list holds %d words, want %d", got, len(words))
	}
	// A body over the limit is too_large, whoever refuses it.
	over := `{"words":["` + strings.Repeat("x", apiserver.DefaultNGBodyLimit) + `"]}`
	if status, body := c.api("PUT", "/ngwords", acme, over); status != 413 || body["error"].(map[string]any)["code"] != "too_large" {
		t.Errorf("a body over 4 MiB: %d %v", status, body)
	}
}
