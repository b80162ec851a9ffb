package ua

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// writeLoop is the session's only writer: it sends queued ops, pings the
// client, and performs the close when asked.
func (ss *session) writeLoop() {
	defer close(ss.writerDone)
	ticker := time.NewTicker(ss.srv.cfg.PingInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ss.closing:
			ss.finishClose()
			return
		default:
		}
		select {
		case b := <-ss.queue:
			if err := ss.write(b); err != nil {
				_ = ss.conn.CloseNow()
				ss.closeWith(websocket.StatusAbnormalClosure, "write failed", nil)
				return
			}
		case <-ss.closing:
			ss.finishClose()
			return
		case <-ticker.C:
			go ss.ping()
		}
	}
}

func (ss *session) write(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), ss.srv.cfg.WriteTimeout)
	defer cancel()
	return ss.conn.Write(ctx, websocket.MessageText, b)
}

// finishClose sends the closing notice, if any, then closes the connection.
func (ss *session) finishClose() {
	if ss.closeNotice != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = ss.conn.Write(ctx, websocket.MessageText, ss.closeNotice)
		cancel()
	}
	_ = ss.conn.Close(ss.closeCode, ss.closeReason)
}

// ping sends a WebSocket ping and waits for the pong. A session that answers
// none within two intervals is dropped: its peer is gone.
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
