package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa/client"
)

// CheckLoopback returns an error unless the URL's host is a loopback
// address, or a name that resolves to loopback addresses only. The load
// tool refuses any other target: it is built to overload what it points
// at.
func CheckLoopback(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("parse %q: %w", rawURL, err)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%q names no host", rawURL)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address: the load tool only targets this machine", host)
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		if !a.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, not a loopback address: the load tool only targets this machine", host, a)
		}
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%s resolves to nothing", host)
	}
	return nil
}

// SourceAddrs returns n loopback source addresses, 127.0.0.2 onwards. Each
// source address has its own range of ephemeral ports, so connections
// spread over n of them pass the limit of about 28,000 connections from
// one address to one server address.
func SourceAddrs(n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for i := range min(max(n, 0), 250) {
		out = append(out, netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)}))
	}
	return out
}

// connKey is the context key under which a dial records its TCP
// connection (see [Dialer.Dial]).
type connKey struct{}

type connSlot struct {
	mu   sync.Mutex
	conn net.Conn
}

// Dialer connects benchmark clients to WebSocket URLs through one shared
// http.Client per source address (never one per connection). Client i
// goes to URL i mod len(urls), from source address i mod len(sources). It
// is safe for concurrent use.
type Dialer struct {
	urls    []string
	clients []*http.Client
	buffer  int
}

// DialerOptions tune a [Dialer].
type DialerOptions struct {
	// Sources are the local addresses to dial from; none means the
	// system's choice. They must be of the target's address family.
	Sources []netip.Addr
	// Insecure skips TLS certificate checks (nginx's self-signed
	// development certificate).
	Insecure bool
	// EventBuffer is each client's events channel capacity.
	EventBuffer int
}

// NewDialer returns a dialer for the WebSocket URLs (at least one).
func NewDialer(urls []string, o DialerOptions) *Dialer {
	d := &Dialer{urls: urls, buffer: o.EventBuffer}
	srcs := o.Sources
	if len(srcs) == 0 {
		srcs = []netip.Addr{{}}
	}
	for _, src := range srcs {
		nd := &net.Dialer{Timeout: 10 * time.Second}
		if src.IsValid() {
			nd.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
			nd.Control = bindNoPort
		}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := nd.DialContext(ctx, network, addr)
				if err == nil {
					if slot, ok := ctx.Value(connKey{}).(*connSlot); ok {
						slot.mu.Lock()
						slot.conn = c
						slot.mu.Unlock()
					}
				}
				return c, err
			},
			TLSHandshakeTimeout: 10 * time.Second,
			DisableCompression:  true,
			MaxIdleConnsPerHost: -1,
		}
		// X25519 alone: Go offers a post-quantum key share too by default,
		// which nginx's OpenSSL does not take, and whose making is a good
		// part of the load tool's CPU in a storm of reconnects.
		tr.TLSClientConfig = &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}}
		if o.Insecure {
			tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // loopback benchmark against a self-signed dev certificate
		}
		d.clients = append(d.clients, &http.Client{Transport: tr})
	}
	return d
}

// Dial connects client i with token (none when empty), resuming from the
// given last sequence numbers (v2; nil for none), and returns the client
// and its TCP connection, which callers close to drop the client
// abruptly, as a network failure would. onMessage, when not nil, receives
// the client's messages on its reader goroutine ([client.Options.OnMessage]),
// possibly before Dial returns.
func (d *Dialer) Dial(ctx context.Context, i int, token string, resume map[string]uint64, onMessage func(client.RawMsg)) (*client.Conn, net.Conn, error) {
	slot := &connSlot{}
	ctx = context.WithValue(ctx, connKey{}, slot)
	c, err := client.Dial(ctx, d.urls[i%len(d.urls)], client.Options{
		Token:       token,
		HTTPClient:  d.clients[i%len(d.clients)],
		EventBuffer: d.buffer,
		Resume:      resume,
		OnMessage:   onMessage,
	})
	slot.mu.Lock()
	nc := slot.conn
	slot.mu.Unlock()
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		return nil, nil, err
	}
	return c, nc, nil
}

// Close releases the dialer's idle HTTP connections.
func (d *Dialer) Close() {
	for _, c := range d.clients {
		c.CloseIdleConnections()
	}
}
