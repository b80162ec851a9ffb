package nginx_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// TestRenderHostRoles: a UA host's configuration (no API socket) routes
// only the WebSockets, an API host's (no UA sockets) only the API; a
// version with neither is an error.
func TestRenderHostRoles(t *testing.T) {
	t.Parallel()
	base := nginx.Config{Registry: testRegistry(), Prefix: "/srv/kaiwa/nginx", OpenFileLimit: 100000}
	uaHost := base
	uaHost.Sockets = func(v string) ([]string, string) { ua, _ := nginx.DirSockets("/run/kaiwa", 2)(v); return ua, "" }
	conf := render(t, uaHost)
	if !strings.Contains(conf, "location = /v2/ws") || !strings.Contains(conf, "upstream kaiwa_ua_v2") {
		t.Errorf("UA host: no WebSocket route:\n%s", conf)
	}
	if strings.Contains(conf, "/api") || strings.Contains(conf, "kaiwa_api_") {
		t.Errorf("UA host: API routes rendered:\n%s", conf)
	}
	apiHost := base
	apiHost.Sockets = nginx.DirSockets("/run/kaiwa", 0)
	conf = render(t, apiHost)
	if !strings.Contains(conf, "location /v2/api/") || !strings.Contains(conf, "upstream kaiwa_api_v2") {
		t.Errorf("API host: no API route:\n%s", conf)
	}
	if strings.Contains(conf, "/ws") || strings.Contains(conf, "kaiwa_ua_") {
		t.Errorf("API host: WebSocket routes rendered:\n%s", conf)
	}
	none := base
	none.Sockets = func(string) ([]string, string) { return nil, "" }
	if err := nginx.Render(&strings.Builder{}, none); err == nil {
		t.Error("a version with neither UA nor API sockets rendered")
	}
}

// TestNginxPassesRefusedUpgradesOn: a UA that refuses upgrades with 503
// (a draining or fenced UA) costs nothing: every upgrade reaches the
// version's other UA. When both refuse, the client gets the UA's 503.
func TestNginxPassesRefusedUpgradesOn(t *testing.T) {
	t.Parallel()
	dir := socketDir(t)
	refusing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":{"code":"unavailable","message":"server lost the message bus, reconnect"}}`)
	})
	listenUnix(t, nginx.UASocket(dir, "v1", 0), refusing)
	second := nginx.UASocket(dir, "v1", 1)
	listenUnix(t, second, wsBackend("ua-v1-1"))
	p := testenv.Nginx(t, nginx.Config{
		Registry: versions.Default(), Sockets: nginx.DirSockets(dir, 2),
		UpgradeRate: 100000, UpgradeBurst: 100000, PerIPUpgradeRate: -1,
	})
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	for i := range 10 {
		u := dialWS(ctx, client, p.WSURL+"/v1/ws")
		if u.conn == nil {
			t.Fatalf("upgrade %d refused: %d %+v %v", i, u.status, u.body, u.err)
		}
		u.conn.CloseNow()
	}

	dir2 := socketDir(t)
	listenUnix(t, nginx.UASocket(dir2, "v1", 0), refusing)
	listenUnix(t, nginx.UASocket(dir2, "v1", 1), refusing)
	p2 := testenv.Nginx(t, nginx.Config{Registry: versions.Default(), Sockets: nginx.DirSockets(dir2, 2), PerIPUpgradeRate: -1})
	u := dialWS(ctx, client, p2.WSURL+"/v1/ws")
	if u.conn != nil || u.status != http.StatusServiceUnavailable || u.body.Error.Code != "unavailable" {
		t.Errorf("every UA refusing: %d %+v %v, want 503 unavailable", u.status, u.body, u.err)
	}
}
