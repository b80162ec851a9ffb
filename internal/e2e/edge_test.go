package e2e

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/kaiwa-chat/kaiwa/apiserver"
	"github.com/kaiwa-chat/kaiwa/nginx"
)

// TestEdgeAgreesWithTheAPI checks that nginx, as rendered by default,
// serves what docs/api.md promises: the health endpoints, and bodies up to
// the API's largest.
func TestEdgeAgreesWithTheAPI(t *testing.T) {
	if nginx.DefaultClientMaxBodyBytes != apiserver.DefaultNGBodyLimit {
		t.Errorf("nginx's body limit %d differs from the API's largest body %d", nginx.DefaultClientMaxBodyBytes, apiserver.DefaultNGBodyLimit)
	}
	c := newCluster(t, clusterOpts{})
	acme := c.tenant("acme")

	// Health through nginx, without a key, where docs/api.md says: nginx's
	// own, and each version's API process's.
	for path, want := range map[string]string{
		"/healthz":        `{"status":"ok"}`,
		"/v1/api/healthz": `{"status":"ok"}`,
		"/v1/api/readyz":  `{"status":"ready"}`,
		"/v2/api/readyz":  `{"status":"ready"}`,
	} {
		resp, err := c.http.Get(c.nginx.HTTPSURL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != want {
			t.Errorf("GET %s: %d %s, want 200 %s", path, resp.StatusCode, body, want)
		}
	}

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
