package egress

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// fakeResolver answers every name with its addresses.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	p := Policy{Resolver: fakeResolver{
		"hooks.game.example":  addrs("203.0.113.10", "2001:4860::1"),
		"rebind.example":      addrs("203.0.113.11", "10.0.0.5"),
		"metadata.example":    addrs("169.254.169.254"),
		"loop.example":        addrs("127.0.0.1"),
		"v6loop.example":      addrs("::1"),
		"mapped.example":      addrs("::ffff:192.168.1.1"),
		"cgnat.example":       addrs("100.64.1.1"),
		"ula.example":         addrs("fd00::1"),
		"public-only.example": addrs("8.8.8.8"),
	}}
	ok := []string{"https://hooks.game.example/kaiwa", "https://public-only.example:8443/x?y=1", "https://203.0.113.7/hook"}
	bad := []string{
		"https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://172.16.0.1/", "https://192.168.0.1/",
		"https://169.254.169.254/latest/meta-data", "https://[::1]/", "https://[fe80::1]/", "https://0.0.0.0/",
		"https://rebind.example/", "https://metadata.example/", "https://loop.example/", "https://v6loop.example/",
		"https://mapped.example/", "https://cgnat.example/", "https://ula.example/", "https://unknown.example/",
		"https://localhost/", "https://a.localhost/", "http://hooks.game.example/", "https://u:p@hooks.game.example/",
		"ftp://hooks.game.example/", "hooks.game.example/x", "",
	}
	for _, u := range ok {
		if err := p.CheckURL(t.Context(), u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range bad {
		if err := p.CheckURL(t.Context(), u); !kaiwa.IsCode(err, kaiwa.CodeBadRequest) {
			t.Errorf("%s: %v, want bad_request", u, err)
		}
	}
	open := Policy{AllowPrivate: true}
	for _, u := range []string{"http://127.0.0.1:8080/x", "https://10.1.2.3/hook", "http://localhost/x"} {
		if err := open.CheckURL(t.Context(), u); err != nil {
			t.Errorf("with AllowPrivate, %s refused: %v", u, err)
		}
	}
}

// TestClientChecksAtConnect: a URL that passed its check but whose host
// now resolves to a forbidden address (DNS rebinding) is not connected
// to: the dialer checks the address it connects to.
func TestClientChecksAtConnect(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	_, err := Policy{}.Client(2 * time.Second).Get(srv.URL)
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("strict client reached %s: %v", srv.URL, err)
	}
	resp, err := Policy{AllowPrivate: true}.Client(2 * time.Second).Get(srv.URL)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("with AllowPrivate: %v %v", resp, err)
	}
	resp.Body.Close()
}
