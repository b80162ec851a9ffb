package ua

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// writerIdle is how long a writer goroutine waits for more to send before
// it exits (the next enqueue starts a new one).
const writerIdle = 2 * time.Second

// writeLoop is the session's writer: it sends queued ops, batching several
// into one frame when the version allows and the queue is deep, and
// performs the close when asked. At most one runs per session (see kick).
func (ss *session) writeLoop() {
	max := ss.codec.MaxBatch()
	var ops [][]byte
	var frame []byte
	idle := time.NewTimer(writerIdle)
	defer idle.Stop()
	for {
		// Send everything queued, in frames of up to max ops.
		for {
			select {
			case <-ss.closing:
				ss.finishClose()
				return
			default:
			}
			ops = ss.queue.pop(ops[:0], max)
			if len(ops) == 0 {
				break
			}
			var err error
			if max == 1 {
				err = ss.write(ops[0])
			} else {
				frame = ss.codec.AppendFrame(frame[:0], ops, ss.clock)
				err = ss.write(frame)
			}
			clear(ops) // drop references to shared bytes
			if err != nil {
				_ = ss.conn.CloseNow()
				ss.closeWith(websocket.StatusAbnormalClosure, "write failed")
				ss.finishClose()
				return
			}
		}
		if cap(frame) > 64<<10 {
			frame = nil // do not hold a large buffer on a quiet session
		}
		if cap(ops) > 64 {
			ops = nil
		}
		idle.Reset(writerIdle)
		select {
		case <-ss.queue.ready:
		case <-ss.closing:
			ss.finishClose()
			return
		case <-idle.C:
			// Quiet: exit, unless something arrived while leaving.
			ss.writing.Store(false)
			if ss.queue.len() == 0 || !ss.writing.CompareAndSwap(false, true) {
				select {
				case <-ss.closing:
					ss.kick()
				default:
				}
				return
			}
		}
	}
}

// write sends one frame. It sets no deadline (a context with one costs
// several allocations per frame): a writer stuck on a client that stopped
// reading is released by the close watchdog (see closeWith) or, on a quiet
// session, by the unanswered ping.
func (ss *session) write(b []byte) error {
	return ss.conn.Write(context.Background(), websocket.MessageText, b)
}

// finishClose sends the closing notices, if any, then closes the
// connection. Only the first call does anything.
func (ss *session) finishClose() {
	if !ss.closeDone.CompareAndSwap(false, true) {
		return
	}
	defer close(ss.done)
	if len(ss.closeNotice) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if ss.codec.MaxBatch() == 1 {
			for _, op := range ss.closeNotice {
				_ = ss.conn.Write(ctx, websocket.MessageText, op)
			}
		} else {
			_ = ss.conn.Write(ctx, websocket.MessageText, ss.codec.AppendFrame(nil, ss.closeNotice, ss.clock))
		}
		cancel()
	}
	_ = ss.conn.Close(ss.closeCode, ss.closeReason)
}

// ping sends a WebSocket ping and waits for the pong. A session that answers
// none within two intervals is dropped: its peer is gone. The server's
// pinger calls it (see Server.pinger).
func (ss *session) ping() {
	if !ss.pinging.CompareAndSwap(false, true) {
		return // the previous ping is still waiting
	}
	defer ss.pinging.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*ss.srv.cfg.PingInterval)
	defer cancel()
	if err := ss.conn.Ping(ctx); err != nil {
		select {
		case <-ss.closing:
		default:
			_ = ss.conn.CloseNow()
		}
	}
}
