package outbox

import "github.com/kaiwa-chat/kaiwa/versions"

// Prepare turns an encoded op into what [Outbox.Send] takes for codec:
// for a version of one op per frame, the whole WebSocket frame, built
// once here and shared by every outbox it is sent to; for a batching
// version, the op itself, which each outbox frames with what else it has
// queued.
func Prepare(codec versions.Codec, op []byte) []byte {
	if codec.MaxBatch() == 1 {
		return textFrame(op)
	}
	return op
}

// frameHeaderMax is room for the longest frame header the server writes.
const frameHeaderMax = 10

// zeroHeader is the room reserved before a frame's payload.
var zeroHeader [frameHeaderMax]byte

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
