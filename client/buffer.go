package client

import (
	"io"
	"sync"
)

// maxPooledFrame is the largest frame buffer kept for reuse: a rare large
// frame (a history reply) does not pin its memory.
const maxPooledFrame = 64 << 10

// framePool holds the buffers readers read frames into. A reader holds
// one only while it handles a frame, so idle connections hold none.
var framePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// getFrameBuffer returns a buffer from the pool.
func getFrameBuffer() *[]byte { return framePool.Get().(*[]byte) }

// putFrameBuffer returns buf to the pool, with frame, the storage it grew
// into, unless that is too large to keep.
func putFrameBuffer(buf *[]byte, frame []byte) {
	if cap(frame) > maxPooledFrame {
		return
	}
	*buf = frame[:0]
	framePool.Put(buf)
}

// readAll is io.ReadAll appending to b: it reads r to EOF and returns the
// grown b.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
