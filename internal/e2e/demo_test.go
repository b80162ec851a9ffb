package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// TestDemoPage opens the TypeScript SDK's demo page, as kaiwa dev serves
// it at https://HOST/demo/, in two headless Chromium pages (sdk/js/test/
// demo.mjs, driven by playwright-core): alice and bob connect with their
// tokens and join a channel, alice types a message, and bob's page must
// show it. The screenshots of both pages are kept in the test artifacts
// directory (testenv.ArtifactDir: $KAIWA_TEST_ARTIFACTS/demo, or
// var/test-artifacts/demo).
func TestDemoPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kaiwa dev and Chromium")
	}
	node, sdk := testenv.JSSDK(t, "playwright-core")
	demo := filepath.Join(sdk, "demo")
	if _, err := os.Stat(filepath.Join(demo, "kaiwa", "index.js")); err != nil {
		testenv.Missing(t, "the demo page has no SDK: sdk/js/demo/kaiwa/index.js (cd sdk/js && npm run build)")
	}
	chromium := testenv.Chromium(t)
	d := startDev(t, "--demo-dir", demo)
	if !strings.Contains(d.out.String(), "https://"+d.https+"/demo/") {
		t.Errorf("the walkthrough does not name the demo page:\n%s", d.out.String())
	}
	d.api(t, "v2", "PUT", "/channels/world", map[string]any{"kind": "open", "title": "World"}, 201)
	tokens := map[string]string{}
	for _, u := range []string{"alice", "bob"} {
		m := d.api(t, "v2", "POST", "/tokens", map[string]any{
			"user": u, "name": strings.ToUpper(u[:1]) + u[1:], "ttl_seconds": 600, "join": []string{"world"}, "publish": []string{"world"},
		}, 201)
		tokens[u], _ = m["token"].(string)
	}
	tokenJSON, _ := json.Marshal(tokens)
	shots := testenv.ArtifactDir(t, "demo")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "test/demo.mjs")
	cmd.Dir = sdk
	cmd.Env = append(os.Environ(),
		"KAIWA_DEMO_URL=https://"+d.https+"/demo/",
		"KAIWA_DEMO_TOKENS="+string(tokenJSON),
		"KAIWA_DEMO_CHANNEL=world",
		"KAIWA_DEMO_SHOTS="+shots,
		"KAIWA_CHROMIUM="+chromium,
	)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("node test/demo.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the demo page test failed: %v", err)
	}
	for _, u := range []string{"alice", "bob"} {
		p := filepath.Join(shots, u+".png")
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("no screenshot %s: %v", p, err)
		}
	}
	t.Logf("screenshots in %s", shots)
}
