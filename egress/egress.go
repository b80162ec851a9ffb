// Package egress is how Kaiwa calls the endpoints tenants name (webhooks,
// the before-send hook): only https URLs, and never an address inside the
// operator's network (loopback, private, link-local, unique-local,
// carrier-grade NAT, unspecified, multicast), unless the operator allows
// them ([Policy.AllowPrivate], for tests and private deployments).
//
// A URL is checked when it is registered ([Policy.CheckURL]: every address
// its host resolves to must be allowed) and again at every connection
// ([Policy.Client] dials through a check of the address actually
// connected to), so that a name that resolves elsewhere later (DNS
// rebinding) cannot reach a forbidden address.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// Policy says which endpoints may be called.
type Policy struct {
	// AllowPrivate allows http URLs and every address (an operator flag;
	// tests set it to reach their loopback receivers).
	AllowPrivate bool
	// Resolver resolves host names; nil is net.DefaultResolver.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// blocked are the ranges no endpoint may be in (besides what
// netip.Addr's predicates name).
var blocked = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved
	netip.MustParsePrefix("64:ff9b::/96"),  // NAT64 (maps IPv4 inside)
	netip.MustParsePrefix("2001:db8::/32"), // documentation
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("255.255.255.255/32"),
}

// Allowed reports whether an endpoint may be at address a.
func (p Policy) Allowed(a netip.Addr) bool {
	if p.AllowPrivate {
		return true
	}
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, b := range blocked {
		if b.Contains(a) {
			return false
		}
	}
	return true
}

// MaxURLLen bounds an endpoint's URL.
const MaxURLLen = 2000

// CheckURL validates an endpoint URL a tenant registers: absolute, https
// (http only with AllowPrivate), no user info, and a host whose every
// address is allowed. Refusals are [kaiwa.CodeBadRequest].
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	if len(raw) > MaxURLLen {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "url longer than %d characters", MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "url must be an absolute https URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowPrivate:
	default:
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "url must be an https URL")
	}
	if u.User != nil {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "url must not carry credentials")
	}
	if p.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.Allowed(a) {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "url's address %s is not reachable from Kaiwa (private, loopback or link-local)", a)
		}
		return nil
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "url's host %s is not reachable from Kaiwa", host)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "url's host %s does not resolve", host)
	}
	for _, a := range addrs {
		if !p.Allowed(a) {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "url's host %s resolves to %s, which is not reachable from Kaiwa (private, loopback or link-local)", host, a.Unmap())
		}
	}
	return nil
}

func (p Policy) resolver() interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
} {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// ErrForbiddenAddress is the error of a connection to an address the
// policy does not allow.
var ErrForbiddenAddress = errors.New("egress: address not allowed")

// Client returns an HTTP client for tenants' endpoints: each request
// bounded by timeout, no redirects followed (a redirect is the endpoint's
// answer), no proxy from the environment, and every connection checked
// against the policy at connect time.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{
		Timeout: timeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			if !p.Allowed(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
			}
			return nil
		},
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
