package ua

import (
	"fmt"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

func seqs(ms []kaiwa.Message) string {
	s := ""
	for _, m := range ms {
		s += fmt.Sprint(m.Seq, " ")
	}
	return s
}

func TestRoomRecentWindow(t *testing.T) {
	r := &room{}
	add := func(seq, prev uint64) {
		r.remember(&kaiwa.Message{Seq: seq, Prev: prev, ID: fmt.Sprint("m", seq)}, 4)
	}
	if _, ok := r.since(0); ok {
		t.Fatal("an empty window covers nothing")
	}
	add(10, 7)
	add(12, 10)
	add(15, 12)
	if got, ok := r.since(7); !ok || seqs(got) != "10 12 15 " {
		t.Errorf("since 7 = %q %v", seqs(got), ok)
	}
	if got, ok := r.since(12); !ok || seqs(got) != "15 " {
		t.Errorf("since 12 = %q %v", seqs(got), ok)
	}
	if got, ok := r.since(15); !ok || len(got) != 0 {
		t.Errorf("since the last = %q %v", seqs(got), ok)
	}
	if _, ok := r.since(6); ok {
		t.Error("a gap before the window was reported covered")
	}
	// The window keeps the newest 4.
	add(16, 15)
	add(20, 16)
	if got, ok := r.since(12); !ok || seqs(got) != "15 16 20 " {
		t.Errorf("after sliding: %q %v", seqs(got), ok)
	}
	if got, ok := r.since(10); !ok || seqs(got) != "12 15 16 20 " {
		t.Errorf("since the slid-out 10 = %q %v", seqs(got), ok)
	}
	if _, ok := r.since(9); ok {
		t.Error("a gap before the window was reported covered")
	}
	// A missed delivery restarts the window.
	add(30, 25)
	if _, ok := r.since(20); ok {
		t.Error("a window across a missed delivery was reported covered")
	}
	if got, ok := r.since(25); !ok || seqs(got) != "30 " {
		t.Errorf("after the restart: %q %v", seqs(got), ok)
	}
	// Deleted messages are not replayed, and the window still covers.
	add(31, 30)
	r.forget("m30")
	if got, ok := r.since(25); !ok || seqs(got) != "31 " {
		t.Errorf("after a deletion: %q %v", seqs(got), ok)
	}
	// A message following the deleted one (prev names it) continues the run.
	r.forget("m31")
	add(32, 31)
	if got, ok := r.since(25); !ok || seqs(got) != "32 " {
		t.Errorf("after deleting the last: %q %v", seqs(got), ok)
	}
}
