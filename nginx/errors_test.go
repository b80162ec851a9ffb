package nginx_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// rawRequest writes req, as it is, to addr and reads the response.
func rawRequest(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%.40q: %v", req, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%.40q: %v", req, err)
	}
	return resp, body
}

// misbehavingAPI answers /v1/api/slow too late and drops /v1/api/drop
// without an answer.
func misbehavingAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/api/slow":
			time.Sleep(2 * time.Second)
		case "/v1/api/drop":
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		}
	})
}

func TestNginxOwnErrorsAreJSON(t *testing.T) {
	t.Parallel()
	dir := socketDir(t)
	listenUnix(t, nginx.APISocket(dir, "v1"), misbehavingAPI())
	p := testenv.Nginx(t, nginx.Config{
		Registry: versions.Default(), Sockets: nginx.DirSockets(dir, 1),
		ClientMaxBodyBytes: 1024, APITimeout: 300 * time.Millisecond,
	})
	addr := strings.TrimPrefix(p.HTTPURL, "http://")
	get := func(path string, headers ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: kaiwa\r\n" + strings.Join(headers, "") + "Connection: close\r\n\r\n"
	}
	long := strings.Repeat("a", 9000)
	cases := []struct {
		name   string
		req    string
		status int
		code   string
	}{
		{"malformed request line", "GARBAGE\r\n\r\n", 400, "bad_request"},
		{"bad percent-encoding", get("/v1/api/%zz"), 400, "bad_request"},
		{"invalid Host", "GET /v1/api/tokens HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad_request"},
		{"unsupported HTTP version", "GET /v1/api/tokens HTTP/3.0\r\nHost: kaiwa\r\n\r\n", 400, "bad_request"},
		{"unsupported transfer coding", get("/v1/api/tokens", "Transfer-Encoding: gzip\r\n"), 400, "bad_request"},
		{"URI too long", get("/v1/api/" + long), 414, "too_large"},
		{"headers too large", get("/v1/api/tokens", "X-Big: "+long+"\r\n"), 431, "too_large"},
		{"body too large", "POST /v1/api/tokens HTTP/1.1\r\nHost: kaiwa\r\nContent-Length: 2048\r\n\r\n" + strings.Repeat("x", 2048), 413, "too_large"},
		{"nginx's internal paths", get("/.kaiwa/error/bad_request"), 404, "not_found"},
		{"backend too slow", get("/v1/api/slow"), 503, "unavailable"},
		{"backend drops the request", get("/v1/api/drop"), 503, "unavailable"},
		{"backend down", get("/v2/api/tokens"), 503, "unavailable"},
		{"no such endpoint", get("/nope"), 404, "not_found"},
	}
	for _, c := range cases {
		resp, body := rawRequest(t, addr, c.req)
		var e errorBody
		err := json.Unmarshal(body, &e)
		if resp.StatusCode != c.status || err != nil || e.Error.Code != c.code || e.Error.Message == "" {
			t.Errorf("%s: %d %q, want %d with code %s", c.name, resp.StatusCode, body, c.status, c.code)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", c.name, ct)
		}
	}
}
