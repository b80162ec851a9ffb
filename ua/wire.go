package ua

import (
	"bytes"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// wire is a connection's one writer. It puts whole frames on the socket in
// the order they are given, and never blocks the goroutine giving them.
//
// A frame goes out at once, from the giver's goroutine, when nothing is
// waiting and the socket takes it: the usual case, since a chat connection
// receives a few messages a second and its socket buffer is empty. There
// is then no queue, no goroutine to wake and no copy: the fan-out writes
// the one encoded frame to each recipient's socket. Otherwise the frame
// waits in a bounded queue for a flusher goroutine, which runs only while
// the socket is backed up and writes everything waiting with one writev
// each time the socket drains. A socket that takes nothing for the write
// timeout fails the wire and closes the connection.
//
// The WebSocket library writes its control frames (pong, ping, close)
// through the same wire as an io.Writer, so they keep their place in line.
type wire struct {
	nc      net.Conn
	rc      syscall.RawConn // nil when nc has no file descriptor
	timeout time.Duration

	mu       sync.Mutex
	pend     [][]byte // waiting frames; pend[0][off:] goes next
	off      int
	flushing bool  // a flusher goroutine runs
	sealed   bool  // the close has begun: data frames are dropped
	err      error // the connection failed; nothing more is written
	idle     chan struct{}
	deadline time.Time // the write deadline the flusher last set

	// The raw write callbacks take no arguments: they work on these,
	// under mu.
	cur     []byte
	n       int
	werr    error // the direct write's
	iov     [][]byte
	ferr    error // the flusher's
	writeFn func(fd uintptr) bool
	flushFn func(fd uintptr) bool
}

// maxWritev bounds the frames one writev carries.
const maxWritev = 64

func newWire(nc net.Conn, timeout time.Duration) *wire {
	w := &wire{nc: nc, timeout: timeout, idle: make(chan struct{}, 1)}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			w.rc = rc
			w.writeFn = w.writeNow
			w.flushFn = w.writeWaiting
		}
	}
	return w
}

// send gives the wire one frame, which it keeps unmodified until written
// (the same bytes go to every recipient). It reports false, taking
// nothing, when limit frames are already waiting: the peer reads too
// slowly. A limit of 0 takes the frame whatever is waiting. Frames given
// after the close began or the connection failed are dropped.
func (w *wire) send(frame []byte, limit int) bool {
	w.mu.Lock()
	if w.err != nil || w.sealed {
		w.mu.Unlock()
		return true
	}
	if limit > 0 && len(w.pend) >= limit {
		w.mu.Unlock()
		return false
	}
	failed := w.put(frame, false)
	w.mu.Unlock()
	if failed {
		_ = w.nc.Close()
	}
	return true
}

// Write implements io.Writer for the WebSocket library's own frames. It
// never blocks: what the socket does not take at once is copied and waits.
func (w *wire) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	failed := w.put(p, true)
	w.mu.Unlock()
	if failed {
		_ = w.nc.Close()
		return 0, net.ErrClosed
	}
	return len(p), nil
}

// put writes frame now if nothing is waiting, and queues what the socket
// does not take, copying it if keep is false for the caller. It reports
// whether the connection failed (the caller closes it, without mu: Close
// waits for a flusher that may be waiting for mu). Call with mu held.
func (w *wire) put(frame []byte, copyRest bool) (failed bool) {
	if len(frame) == 0 {
		return false
	}
	if w.flushing || w.rc == nil {
		if copyRest {
			frame = bytes.Clone(frame)
		}
		w.pend = append(w.pend, frame)
		w.startFlush()
		return false
	}
	w.cur, w.n, w.werr = frame, 0, nil
	err := w.rc.Write(w.writeFn) // never waits: writeNow always returns true
	n := w.n
	w.cur = nil
	if err == nil {
		err = w.werr
	}
	if err != nil {
		w.failLocked(err)
		return true
	}
	if n == len(frame) {
		return false
	}
	rest := frame[n:]
	if copyRest {
		rest = bytes.Clone(rest)
	}
	w.pend = append(w.pend, rest)
	w.startFlush()
	return false
}

// writeNow is the direct write: as much of cur as the socket takes.
func (w *wire) writeNow(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.cur)
		if err == syscall.EINTR {
			continue
		}
		w.n = max(n, 0)
		if err != nil && err != syscall.EAGAIN {
			w.werr = err
		}
		return true
	}
}

// startFlush starts the flusher unless it runs. Call with mu held.
func (w *wire) startFlush() {
	if w.flushing {
		return
	}
	w.flushing = true
	select {
	case <-w.idle: // no longer idle
	default:
	}
	go w.flush()
}

// flush writes what is waiting until nothing is, then exits.
func (w *wire) flush() {
	var err error
	if w.rc != nil {
		w.mu.Lock()
		w.refreshDeadline(time.Now())
		w.mu.Unlock()
		err = w.rc.Write(w.flushFn)
		if err == nil {
			w.mu.Lock()
			err, w.ferr = w.ferr, nil
			w.mu.Unlock()
		}
	} else {
		err = w.flushBlocking()
	}
	if err != nil {
		w.mu.Lock()
		w.failLocked(err)
		w.mu.Unlock()
		_ = w.nc.Close()
	}
}

// writeWaiting is the flusher's raw write: everything waiting, with
// writev, until the socket is full (false: wait until it drains) or
// nothing is left (true).
func (w *wire) writeWaiting(fd uintptr) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.pend) > 0 {
		w.iov = append(w.iov[:0], w.pend[0][w.off:])
		w.iov = append(w.iov, w.pend[1:min(len(w.pend), maxWritev)]...)
		n, err := unix.Writev(int(fd), w.iov)
		clear(w.iov)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			w.ferr = err
			return true
		}
		w.advance(n)
		if len(w.pend) > 0 {
			// Progress: the peer reads, slowly. It has the full timeout
			// again from here.
			w.refreshDeadline(time.Now())
		}
	}
	w.doneFlushing()
	return true
}

// flushBlocking is the flusher for a connection without a file
// descriptor: plain blocking writes, without mu.
func (w *wire) flushBlocking() error {
	for {
		w.mu.Lock()
		if len(w.pend) == 0 {
			w.doneFlushing()
			w.mu.Unlock()
			return nil
		}
		bufs := net.Buffers(append([][]byte(nil), w.pend[:min(len(w.pend), maxWritev)]...))
		bufs[0] = bufs[0][w.off:]
		w.mu.Unlock()
		if err := w.nc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
			return err
		}
		n, err := bufs.WriteTo(w.nc)
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.advance(int(n))
		w.mu.Unlock()
	}
}

// advance drops n written bytes from the front of pend. Call with mu held.
func (w *wire) advance(n int) {
	for n > 0 && len(w.pend) > 0 {
		left := len(w.pend[0]) - w.off
		if n < left {
			w.off += n
			return
		}
		n -= left
		w.pend[0] = nil
		w.pend = w.pend[1:]
		w.off = 0
	}
}

// doneFlushing ends a flush that emptied pend. Call with mu held.
func (w *wire) doneFlushing() {
	w.pend = nil
	w.off = 0
	if !w.deadline.IsZero() && w.rc != nil {
		// Direct writes never wait, but an expired deadline fails them.
		_ = w.nc.SetWriteDeadline(time.Time{})
		w.deadline = time.Time{}
	}
	w.flushing = false
	select {
	case w.idle <- struct{}{}:
	default:
	}
}

// refreshDeadline moves the write deadline to now plus the timeout, at
// most every eighth of the timeout. Call with mu held.
func (w *wire) refreshDeadline(now time.Time) {
	if now.Sub(w.deadline.Add(-w.timeout)) < w.timeout/8 {
		return
	}
	w.deadline = now.Add(w.timeout)
	_ = w.nc.SetWriteDeadline(w.deadline)
}

// failLocked records the connection's failure and drops what waits. Call
// with mu held, then close the connection without it.
func (w *wire) failLocked(err error) {
	if w.err == nil {
		w.err = err
	}
	clear(w.pend)
	w.pend = nil
	w.off = 0
	w.flushing = false
	select {
	case w.idle <- struct{}{}:
	default:
	}
}

// seal drops data frames given from now on; the WebSocket library's close
// frame still goes out after what waits.
func (w *wire) seal() {
	w.mu.Lock()
	w.sealed = true
	w.mu.Unlock()
}

// waiting reports how many frames wait for the socket.
func (w *wire) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pend)
}

// waitIdle blocks until nothing waits for the socket (or the connection
// failed), or until stop is closed. It reports false for stop.
func (w *wire) waitIdle(stop <-chan struct{}) bool {
	for {
		w.mu.Lock()
		busy := w.flushing
		w.mu.Unlock()
		if !busy {
			return true
		}
		select {
		case <-w.idle:
		case <-stop:
			return false
		}
	}
}

// frameHeaderMax is room for the longest frame header the server writes.
const frameHeaderMax = 10

// textFrame returns op as one unmasked WebSocket text frame.
func textFrame(op []byte) []byte {
	b := make([]byte, frameHeaderMax, frameHeaderMax+len(op))
	return frameAt(append(b, op...))
}

// frameAt turns buf, whose first frameHeaderMax bytes are reserved and the
// rest is a text frame's payload, into the frame: it writes the header
// just before the payload and returns the slice from the header on.
func frameAt(buf []byte) []byte {
	n := len(buf) - frameHeaderMax
	var start int
	switch {
	case n < 126:
		start = frameHeaderMax - 2
		buf[start+1] = byte(n)
	case n <= 0xFFFF:
		start = frameHeaderMax - 4
		buf[start+1] = 126
		buf[start+2], buf[start+3] = byte(n>>8), byte(n)
	default:
		start = 0
		buf[1] = 127
		for i := range 8 {
			buf[2+i] = byte(uint64(n) >> (56 - 8*i))
		}
	}
	buf[start] = 0x81 // FIN, text
	return buf[start:]
}
