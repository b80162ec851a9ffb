package testenv

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy from a local address to a target, for tests that
// make a server unreachable and bring it back. While cut, it closes every
// connection it holds and accepts new ones only to close them at once, as a
// crashed or restarting server would.
//
// A Proxy is safe for concurrent use. It stops when the test ends.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
	frozen chan struct{} // not nil while frozen: closed by Thaw
	delay  atomic.Int64  // ns each chunk waits, each way
}

// NewProxy starts a proxy on 127.0.0.1 (a free port) that forwards every
// connection to target ("host:port").
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr returns the proxy's "host:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy and refuses new ones (they
// are accepted and closed at once) until [Proxy.Restore].
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.closeConnsLocked()
}

// Restore lets new connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// SetDelay makes every byte wait d in each direction from now on, as a
// long network path would (0: none).
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Freeze stops forwarding bytes, both ways, on every connection, without
// closing any; new connections are accepted and hang too. The server seems
// alive but answers nothing, as a process stopped with SIGSTOP does.
// [Proxy.Thaw] lets the bytes through again.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen == nil {
		p.frozen = make(chan struct{})
	}
}

// Thaw ends a [Proxy.Freeze].
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen != nil {
		close(p.frozen)
		p.frozen = nil
	}
}

// gate returns a channel closed once the proxy is not frozen.
func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen == nil {
		return closedGate
	}
	return p.frozen
}

var closedGate = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (p *Proxy) close() {
	p.Thaw()
	p.mu.Lock()
	p.closed = true
	p.closeConnsLocked()
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) closeConnsLocked() {
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// track registers c, or reports false when the proxy is cut or closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		if !p.track(c) {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve pipes c to a new connection to the target until either side ends
// or the proxy is cut.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	defer c.Close()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		_ = up.Close()
		return
	}
	defer p.untrack(up)
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		// The reader stamps each chunk; the writer holds it until its
		// delay has passed, so a delay adds latency, not slowness.
		type chunk struct {
			b   []byte
			due time.Time
		}
		chunks := make(chan chunk, 256)
		go func() {
			defer close(chunks)
			for {
				buf := make([]byte, 32<<10)
				n, err := src.Read(buf)
				if n > 0 {
					chunks <- chunk{buf[:n], time.Now().Add(time.Duration(p.delay.Load()))}
				}
				if err != nil {
					return
				}
			}
		}()
		for c := range chunks {
			<-p.gate() // a frozen proxy holds what it read
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.b); err != nil {
				break
			}
		}
		// Close both so the other direction ends too.
		_ = dst.Close()
		_ = src.Close()
		for range chunks { // let the reader end
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// DSNVia returns the MySQL dsn rewritten to connect over TCP to addr
// (typically a [Proxy]'s Addr) instead of its own address. It panics when
// dsn is not a valid MySQL DSN.
func DSNVia(dsn, addr string) string {
	cfg := mustParseDSN(dsn)
	cfg.Net = "tcp"
	cfg.Addr = addr
	return cfg.FormatDSN()
}
