package ua

import (
	"context"
	"sync"
)

// writeLoop is the writer of a batching version's session while ops are
// queued: it frames them, several to a frame when the queue is deep, gives
// the frames to the wire, and performs the close when asked. It exits once
// the queue is empty (the next op is written directly, or starts another).
// At most one runs per session, and none while an op is written directly
// (see kick and offer).
func (ss *session) writeLoop() {
	max := ss.codec.MaxBatch()
	var ops [][]byte
	var buf []byte
	for {
		// Send everything queued, in frames of up to max ops, one frame
		// at a time: while the socket is backed up, ops wait in the queue
		// (where they batch), not on the wire.
		for {
			select {
			case <-ss.closing:
				ss.finishClose()
				return
			default:
			}
			if !ss.wire.waitIdle(ss.closing) {
				continue
			}
			ops = ss.queue.pop(ops[:0], max)
			if len(ops) == 0 {
				break
			}
			if cap(buf) < frameHeaderMax {
				buf = make([]byte, frameHeaderMax, 512)
			}
			buf = ss.codec.AppendFrame(buf[:frameHeaderMax], ops, ss.clock)
			clear(ops) // drop references to shared bytes
			ss.wire.send(frameAt(buf), 0)
			if ss.wire.waiting() > 0 {
				buf = nil // the wire holds it until written
			}
		}
		// Empty: exit, unless something arrived while leaving.
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

// framePool holds buffers for the frames of ops written directly.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeDirect frames op alone and gives it to the wire, from the calling
// goroutine. The caller holds the writer's role (ss.writing).
func (ss *session) writeDirect(op []byte) {
	p := framePool.Get().(*[]byte)
	ss.one[0] = op
	buf := ss.codec.AppendFrame((*p)[:frameHeaderMax], ss.one[:], ss.clock)
	ss.one[0] = nil
	ss.wire.send(frameAt(buf), 0)
	if ss.wire.waiting() == 0 && cap(buf) <= 4096 {
		*p = buf[:0]
		framePool.Put(p) // written: the buffer is free again
	}
}

// out turns an encoded op into what a session is given: for a version
// with one op per frame, the whole WebSocket frame, built once here and
// shared by every recipient; for a batching version, the op itself, which
// each session's writer frames.
func (s *Server) out(op []byte) []byte {
	if s.codec.MaxBatch() == 1 {
		return textFrame(op)
	}
	return op
}

// finishClose sends the closing notices, if any, then closes the
// connection. Only the first call does anything.
func (ss *session) finishClose() {
	if !ss.closeDone.CompareAndSwap(false, true) {
		return
	}
	defer close(ss.done)
	if len(ss.closeNotice) > 0 {
		if ss.framed {
			for _, op := range ss.closeNotice {
				ss.wire.send(textFrame(op), 0)
			}
		} else {
			buf := make([]byte, frameHeaderMax, 512)
			ss.wire.send(frameAt(ss.codec.AppendFrame(buf, ss.closeNotice, ss.clock)), 0)
		}
	}
	ss.wire.seal()
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
