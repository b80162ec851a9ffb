// Package outbox is the write side of a UA's WebSocket connection: one
// [Outbox] per connection owns everything from "the hub has a frame for
// this session" to "the bytes are on the socket".
//
// The WebSocket library (coder/websocket) does the handshake, the reading
// and the control frames; [Accept] hands it the outbox as the writer under
// its buffer, so its pings, pongs and close frame take their place in the
// same line as the data frames, which the outbox builds and writes itself.
package outbox

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa/versions"
	"golang.org/x/sys/unix"
)

// Errors of [Outbox.Send] and [Outbox.SendWait].
var (
	// ErrFull reports an outbox that had no room: it has begun closing its
	// client as a slow consumer (4008), and took nothing more.
	ErrFull = errors.New("outbox: full, closing the client as slow")
	// ErrClosed reports an outbox whose close has begun or whose
	// connection failed: what it was given is dropped.
	ErrClosed = errors.New("outbox: closed")
)

// StatusSlowConsumer is the close code of a client whose outbox
// overflowed.
const StatusSlowConsumer websocket.StatusCode = 4008

// Config is what every outbox of a server shares. It is read-only once
// an outbox uses it.
type Config struct {
	// Codec is the protocol version's. With one op per frame
	// (MaxBatch 1), what [Outbox.Send] takes is whole frames (see
	// [Prepare]); otherwise it takes ops, which the outbox frames, up to
	// MaxBatch to a frame.
	Codec versions.Codec
	// Limit is the most bytes an outbox holds (queued, and framed but not
	// yet on the socket). Whatever would pass it closes the client as a
	// slow consumer. A single item larger than Limit is taken when the
	// outbox is empty.
	Limit int
	// Timeout is how long the socket may take nothing while bytes wait
	// before the connection is dropped, and how long a close may take in
	// all before it is cut short.
	Timeout time.Duration
	// SlowNotice is the op sent (after what is queued) before closing a
	// slow consumer; nil sends none.
	SlowNotice []byte
	// ReadBuffer is the size of the WebSocket library's read buffer.
	// Client frames are small; a larger one is read in several calls.
	ReadBuffer int
}

// Outbox is one connection's writer. It puts frames on the socket whole
// and in the order it is given them, is bounded in bytes, and never
// blocks whoever gives it something (but [Outbox.SendWait], which waits
// for room by design).
//
// # Who writes
//
// While the outbox is idle (nothing queued), a frame given to it is
// written at once by the giving goroutine, under mu, with a non-blocking
// write: for a fan-out, that is one system call per recipient, with no
// queue, no goroutine to wake and no copy. Whatever the socket does not
// take is the one hand-off: it is staged, under mu, for a flusher
// goroutine, which from then on is the only writer. While it runs, givers
// append to the queue and return. The flusher writes everything staged
// with writev as the socket drains, stages what was queued meanwhile
// (framing a batching version's ops, up to MaxBatch to a frame), and
// exits, under mu, once nothing is left: the outbox is idle again. At
// most one flusher runs.
//
// # Close
//
// [Outbox.Close] drops whatever is given after it, queues the closing
// notices after what is already queued, and lets the flusher write it
// all; once the outbox has drained, the flusher performs the WebSocket
// close handshake (the library writes the close frame through the
// outbox, last), and [Outbox.Done] is closed when the connection is. A
// close that takes longer than the timeout in all is cut short.
//
// # Lock order
//
// The library's frame-write lock (it calls [Outbox.Write] holding it),
// then mu, then the session clock's lock (framing) and the socket's write
// lock (a giver's direct write). The flusher takes the socket's write
// lock without mu, and its write callback takes no lock, so it never
// waits for mu while it holds the socket. Nothing calls into the library,
// or closes the socket, with mu held.
type Outbox struct {
	cfg    *Config
	clock  *versions.Clock
	framed bool // one op per frame: Send takes whole frames
	nc     net.Conn
	rc     syscall.RawConn
	ws     *websocket.Conn // set by Accept, before the outbox is shared
	done   chan struct{}
	closed atomic.Bool // Close was called

	// The direct write's, under mu: the frame being written, how much
	// the socket took, and the error. rc.Write's callback takes no
	// arguments; it works on these.
	cur     []byte
	n       int
	werr    error
	writeFn func(fd uintptr) bool
	one     [1][]byte // the op framed for a direct write

	// The flusher's. A giver sets them (under mu) only when it hands off
	// to a new flusher; from then until the flusher exits, only the
	// flusher touches them.
	st       *stage    // the frames staged for writev
	outN     int       // bytes staged, counted in size until written
	buf      *[]byte   // the pooled buffer staged frames were built in
	ferr     error     // the flusher's write error
	deadline time.Time // the write deadline the flusher last set
	flushFn  func(fd uintptr) bool

	mu        sync.Mutex
	q         []item // waiting to be staged; q[head:]
	head      int
	ops       [][]byte // staging's scratch
	size      int      // bytes held: queued and staged
	peak      int      // the most size has been since TakePeak
	flushing  bool     // a flusher runs: givers queue
	finishing bool     // the close handshake has begun
	err       error    // the connection failed: nothing more is written
	gone      bool     // the peer left without a close frame: no handshake
	code      websocket.StatusCode
	reason    string
	room      chan struct{} // closed when bytes drain; made by a waiting SendWait
	timer     *time.Timer   // cuts a close short
}

// item is a queued frame, or an op the flusher frames.
type item struct {
	b  []byte
	op bool
}

// maxWritev bounds the frames one writev carries, and maxStage the bytes
// (a writev beyond what a socket buffer holds gains nothing).
const (
	maxWritev = 64
	maxStage  = 64 << 10
)

// stage is a flusher's: the frames staged for writev, and its vector. A
// flusher takes one from stagePool and gives it back when it exits, so an
// idle outbox holds none and a busy one allocates none.
type stage struct {
	out    [][]byte // out[0][off:] goes next; a slice of frames
	off    int
	frames [maxWritev][]byte
	iov    [maxWritev][]byte
}

var stagePool = sync.Pool{New: func() any { return new(stage) }}

// newStage returns an empty stage from the pool.
func newStage() *stage {
	st := stagePool.Get().(*stage)
	st.out, st.off = st.frames[:0], 0
	return st
}

// free gives st back to the pool, dropping its references.
func (st *stage) free() {
	clear(st.frames[:])
	st.out = nil
	stagePool.Put(st)
}

// newOutbox returns the outbox of nc, which must have a file descriptor.
func newOutbox(nc net.Conn, cfg *Config, clock *versions.Clock) (*Outbox, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errNoDescriptor
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, errNoDescriptor
	}
	o := &Outbox{
		cfg:    cfg,
		clock:  clock,
		framed: cfg.Codec.MaxBatch() == 1,
		nc:     nc,
		rc:     rc,
		done:   make(chan struct{}),
	}
	o.writeFn = o.writeCur
	o.flushFn = o.writeStaged
	return o, nil
}

var errNoDescriptor = errors.New("outbox: the connection has no file descriptor (serve the UA over TCP or a unix socket)")

// Send gives the outbox b (see [Prepare]), which it keeps unmodified
// until written: the same bytes may go to many outboxes. It never
// blocks. It returns [ErrFull] when b does not fit (the client is then
// being closed as a slow consumer) and [ErrClosed] when the close has
// begun or the connection failed; b is dropped either way.
func (o *Outbox) Send(b []byte) error {
	o.mu.Lock()
	if o.closed.Load() || o.err != nil {
		o.mu.Unlock()
		return ErrClosed
	}
	if o.size > 0 && o.size+len(b) > o.cfg.Limit {
		o.closeLocked(StatusSlowConsumer, "slow consumer", o.cfg.SlowNotice)
		o.mu.Unlock()
		return ErrFull
	}
	failed := o.putLocked(b, !o.framed, false)
	o.mu.Unlock()
	if failed {
		_ = o.nc.Close()
	}
	return nil
}

// SendWait gives the outbox bs, in order, as [Outbox.Send] would, but
// waits for room instead of failing: it queues while the outbox holds at
// most half its limit, so that live traffic keeps the other half. It
// waits at most within for the socket to drain each time it is short of
// room; past that, it closes the client as a slow consumer and returns
// [ErrFull]. It writes nothing itself: what it queues goes out in full
// frames and writevs. It is for a session's own goroutine (a resume's
// replay), never for a fan-out.
func (o *Outbox) SendWait(within time.Duration, bs ...[]byte) error {
	var timer *time.Timer
	for {
		o.mu.Lock()
		if o.closed.Load() || o.err != nil {
			o.mu.Unlock()
			return ErrClosed
		}
		took := 0
		for len(bs) > 0 && (o.size == 0 || o.size+len(bs[0]) <= o.cfg.Limit/2) {
			o.push(item{b: bs[0], op: !o.framed})
			bs = bs[1:]
			took++
		}
		if took > 0 && !o.flushing {
			o.startFlushLocked()
		}
		if len(bs) == 0 {
			o.mu.Unlock()
			return nil
		}
		if o.room == nil {
			o.room = make(chan struct{})
		}
		room := o.room
		o.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(within)
			defer timer.Stop()
		} else if took > 0 {
			timer.Reset(within) // progress: the full wait again
		}
		select {
		case <-room:
		case <-timer.C:
			o.mu.Lock()
			o.closeLocked(StatusSlowConsumer, "slow consumer", o.cfg.SlowNotice)
			o.mu.Unlock()
			return ErrFull
		}
	}
}

// Write implements io.Writer for the WebSocket library's own frames
// (pings, pongs, the close frame), which are never refused for room and
// still go out after a close has begun. It never blocks: what the socket
// does not take at once is copied and waits its turn.
func (o *Outbox) Write(p []byte) (int, error) {
	o.mu.Lock()
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return 0, err
	}
	failed := o.putLocked(p, false, true)
	o.mu.Unlock()
	if failed {
		_ = o.nc.Close()
		return 0, net.ErrClosed
	}
	return len(p), nil
}

// Close begins closing the connection with code and reason: it drops
// whatever is given from now on, sends the notices (encoded ops) after
// what is already queued, then the WebSocket close. Only the first call
// counts. It does not wait: see [Outbox.Done].
func (o *Outbox) Close(code websocket.StatusCode, reason string, notices ...[]byte) {
	o.mu.Lock()
	o.closeLocked(code, reason, notices...)
	o.mu.Unlock()
}

// Gone records that the peer has left without a close frame (its end of
// the connection is closed): the close that follows makes no handshake.
// What is queued is still written, as far as the socket takes it.
func (o *Outbox) Gone() {
	o.mu.Lock()
	o.gone = true
	o.mu.Unlock()
}

// Queued returns the bytes the outbox holds: given to it and not yet on
// the socket, as far as the flusher has counted.
func (o *Outbox) Queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.size
}

// TakePeak returns the most bytes the outbox has held since the last
// call, and starts over from what it holds now.
func (o *Outbox) TakePeak() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := max(o.peak, o.size)
	o.peak = o.size
	return p
}

// Closing reports whether the close has begun.
func (o *Outbox) Closing() bool { return o.closed.Load() }

// Done is closed once the connection is closed.
func (o *Outbox) Done() <-chan struct{} { return o.done }

// closeLocked is Close with mu held. The flusher does the rest: it
// writes what is queued and then performs the handshake.
func (o *Outbox) closeLocked(code websocket.StatusCode, reason string, notices ...[]byte) {
	if o.closed.Load() {
		return
	}
	o.closed.Store(true)
	o.code, o.reason = code, reason
	if o.err == nil {
		for _, n := range notices {
			if n == nil {
				continue
			}
			if o.framed {
				n = textFrame(n)
			}
			o.push(item{b: n, op: !o.framed})
		}
	}
	o.timer = time.AfterFunc(o.cfg.Timeout, o.cutShort)
	o.wakeLocked()
	if !o.flushing {
		o.startFlushLocked()
	}
}

// cutShort drops a connection whose close took too long (a client that
// reads too slowly to take what was queued before it).
func (o *Outbox) cutShort() {
	select {
	case <-o.done:
	default:
		_ = o.nc.Close()
	}
}

// finish performs the close handshake, once the outbox has drained (or
// failed) after Close. It runs on the last flusher. A connection that
// failed, or whose peer is gone, is closed without one: nobody would
// answer it, and the library's failed attempt costs an error built and
// formatted per session, which a storm of dropped clients multiplies.
func (o *Outbox) finish() {
	o.mu.Lock()
	handshake := o.err == nil && !o.gone
	o.mu.Unlock()
	if handshake {
		_ = o.ws.Close(o.code, o.reason)
	} else {
		_ = o.ws.CloseNow()
	}
	o.mu.Lock()
	t := o.timer
	o.mu.Unlock()
	t.Stop()
	close(o.done)
}

// push queues it. Call with mu held.
func (o *Outbox) push(it item) {
	if o.head > 0 && len(o.q) == cap(o.q) {
		// Reuse the written front instead of growing.
		n := copy(o.q, o.q[o.head:])
		clear(o.q[n:])
		o.q = o.q[:n]
		o.head = 0
	}
	o.q = append(o.q, it)
	o.size += len(it.b)
	o.peak = max(o.peak, o.size)
}

// putLocked writes b now when the outbox is idle, and hands what the
// socket does not take to a flusher; otherwise it queues b. op says b is
// an op to frame; keep says b must be copied to be kept (the library
// reuses its buffer). It reports whether the connection failed: the
// caller closes it, without mu.
func (o *Outbox) putLocked(b []byte, op, keep bool) (failed bool) {
	if len(b) == 0 {
		return false
	}
	if o.flushing {
		if keep {
			b = bytes.Clone(b)
		}
		o.push(item{b: b, op: op})
		return false
	}
	frame := b
	var p *[]byte
	if op {
		p = framePool.Get().(*[]byte)
		o.one[0] = b
		buf := o.cfg.Codec.AppendFrame(append((*p)[:0], zeroHeader[:]...), o.one[:], o.clock)
		o.one[0] = nil
		*p = buf
		frame = frameAt(buf)
		keep = false // built here
	}
	o.cur, o.n, o.werr = frame, 0, nil
	err := o.rc.Write(o.writeFn) // never waits: writeCur always returns true
	n := o.n
	o.cur = nil
	if err == nil {
		err = o.werr
	}
	if err != nil {
		putFrame(p)
		o.failLocked(err)
		return true
	}
	if n == len(frame) {
		putFrame(p)
		return false
	}
	// The hand-off: the rest is the new flusher's.
	rest := frame[n:]
	if keep {
		rest = bytes.Clone(rest)
	}
	o.st = newStage()
	o.st.out = append(o.st.out, rest)
	o.outN = len(rest)
	o.buf = p
	o.size += len(rest)
	o.peak = max(o.peak, o.size)
	o.startFlushLocked()
	return false
}

// writeCur is the direct write's callback: as much of cur as the socket
// takes now.
func (o *Outbox) writeCur(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), o.cur)
		if err == syscall.EINTR {
			continue
		}
		o.n = max(n, 0)
		if err != nil && err != syscall.EAGAIN {
			o.werr = err
		}
		return true
	}
}

// startFlushLocked starts the flusher. Call with mu held, flushing false.
func (o *Outbox) startFlushLocked() {
	o.flushing = true
	go o.flush()
}

// flush is the flusher: it writes what is staged, stages what is queued,
// and exits once nothing is left, performing the close handshake when a
// close is pending.
func (o *Outbox) flush() {
	for {
		if o.st != nil && len(o.st.out) > 0 {
			o.refreshDeadline(time.Now())
			err := o.rc.Write(o.flushFn)
			if err == nil {
				err, o.ferr = o.ferr, nil
			}
			if err != nil {
				o.st.out = o.st.out[:0]
				putFrame(o.buf)
				o.buf = nil
				o.mu.Lock()
				o.outN = 0
				o.failLocked(err)
				finish := o.idleLocked()
				o.mu.Unlock()
				_ = o.nc.Close()
				if finish {
					o.finish()
				}
				return
			}
		}
		o.mu.Lock()
		o.size -= o.outN // written
		o.outN = 0
		putFrame(o.buf)
		o.buf = nil
		if o.err == nil {
			o.stageLocked()
		}
		if o.outN == 0 {
			finish := o.idleLocked()
			o.mu.Unlock()
			if finish {
				o.finish()
			}
			return
		}
		o.wakeLocked() // bytes drained: a waiting SendWait may fit
		o.mu.Unlock()
	}
}

// idleLocked ends a flusher: the outbox is idle again. It reports
// whether the flusher must now perform the close handshake (a close is
// pending and nobody has begun it). Call with mu held.
func (o *Outbox) idleLocked() (finish bool) {
	if !o.deadline.IsZero() {
		// Direct writes never wait, but an expired deadline fails them.
		_ = o.nc.SetWriteDeadline(time.Time{})
		o.deadline = time.Time{}
	}
	o.flushing = false
	if o.st != nil {
		o.st.free() // an idle outbox holds no buffers
		o.st = nil
	}
	if o.head == len(o.q) && cap(o.q) > 64 {
		o.q, o.head = nil, 0 // let a burst's queue go
	}
	o.wakeLocked()
	if o.closed.Load() && !o.finishing {
		o.finishing = true
		return true
	}
	return false
}

// stageLocked moves queued items to the stage, framing runs of ops, up
// to maxWritev frames or maxStage bytes. Call with mu held, nothing
// staged.
func (o *Outbox) stageLocked() {
	if o.head == len(o.q) {
		return
	}
	if o.st == nil {
		o.st = newStage()
	}
	st := o.st
	st.out, st.off = st.frames[:0], 0
	batch := o.cfg.Codec.MaxBatch()
	for len(st.out) < maxWritev && o.outN < maxStage && o.head < len(o.q) {
		it := o.q[o.head]
		if !it.op {
			st.out = append(st.out, it.b)
			o.outN += len(it.b)
			o.q[o.head] = item{}
			o.head++
			continue
		}
		o.ops = o.ops[:0]
		in := 0
		for o.head < len(o.q) && o.q[o.head].op && len(o.ops) < batch {
			o.ops = append(o.ops, o.q[o.head].b)
			in += len(o.q[o.head].b)
			o.q[o.head] = item{}
			o.head++
		}
		if o.buf == nil {
			o.buf = framePool.Get().(*[]byte)
			*o.buf = (*o.buf)[:0]
		}
		start := len(*o.buf)
		b := o.cfg.Codec.AppendFrame(append(*o.buf, zeroHeader[:]...), o.ops, o.clock)
		clear(o.ops) // drop references to shared bytes
		*o.buf = b
		frame := frameAt(b[start:])
		st.out = append(st.out, frame)
		o.outN += len(frame)
		o.size += len(frame) - in
	}
	if o.head == len(o.q) {
		o.q = o.q[:0]
		o.head = 0
	}
}

// writeStaged is the flusher's write callback: everything staged, with
// writev, until the socket is full (false: wait until it drains) or
// nothing is left (true). It takes no lock.
func (o *Outbox) writeStaged(fd uintptr) bool {
	st := o.st
	for len(st.out) > 0 {
		iov := append(st.iov[:0], st.out[0][st.off:])
		iov = append(iov, st.out[1:]...)
		n, err := unix.Writev(int(fd), iov)
		clear(iov)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			o.ferr = err
			return true
		}
		st.advance(n)
		if len(st.out) > 0 {
			// Progress: the peer reads, slowly. It has the full timeout
			// again from here.
			o.refreshDeadline(time.Now())
		}
	}
	return true
}

// advance drops n written bytes from the front of out.
func (st *stage) advance(n int) {
	for n > 0 && len(st.out) > 0 {
		left := len(st.out[0]) - st.off
		if n < left {
			st.off += n
			return
		}
		n -= left
		st.out[0] = nil
		st.out = st.out[1:]
		st.off = 0
	}
}

// refreshDeadline moves the write deadline to now plus the timeout, at
// most every eighth of the timeout (the flusher's).
func (o *Outbox) refreshDeadline(now time.Time) {
	if now.Sub(o.deadline.Add(-o.cfg.Timeout)) < o.cfg.Timeout/8 {
		return
	}
	o.deadline = now.Add(o.cfg.Timeout)
	_ = o.nc.SetWriteDeadline(o.deadline)
}

// failLocked records the connection's failure and drops what is queued.
// Call with mu held, then close the socket without it.
func (o *Outbox) failLocked(err error) {
	if o.err == nil {
		o.err = err
	}
	clear(o.q)
	o.q, o.head = nil, 0
	o.size = 0
	o.wakeLocked()
}

// wakeLocked wakes a waiting SendWait. Call with mu held.
func (o *Outbox) wakeLocked() {
	if o.room != nil {
		close(o.room)
		o.room = nil
	}
}

// framePool holds the buffers frames are built in.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// putFrame returns a frame buffer to the pool, unless it grew larger
// than a stage needs.
func putFrame(p *[]byte) {
	if p != nil && cap(*p) <= 2*maxStage {
		*p = (*p)[:0]
		framePool.Put(p)
	}
}
