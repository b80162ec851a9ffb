package bench

import (
	"context"
	"testing"
	"time"
)

func TestPacerScheduleDoesNotDrift(t *testing.T) {
	start := time.Unix(1000, 0)
	p := NewPacer(start, 3, 1<<40) // 333.33... ms apart: never exact
	for _, n := range []int64{0, 1, 2, 3, 3000, 3_000_000} {
		want := start.Add(time.Duration(n) * time.Second / 3)
		if d := p.Due(n).Sub(want); d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("Due(%d) off by %v", n, d)
		}
	}
}

func TestPacerNeverEarlyAndBounded(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	p := NewPacer(start, 1000, 20)
	var count int
	for {
		n, due, ok := p.Next(ctx, start.Add(time.Hour))
		if !ok {
			break
		}
		if n != int64(count) {
			t.Fatalf("event %d numbered %d", count, n)
		}
		if now := time.Now(); now.Before(due) {
			t.Fatalf("event %d returned %v before it was due", n, due.Sub(now))
		}
		count++
	}
	if count != 20 {
		t.Fatalf("%d events, want the limit of 20", count)
	}
	if _, _, ok := p.Next(ctx, start.Add(time.Hour)); ok {
		t.Fatal("a done pacer went on")
	}
}

func TestPacerCatchesUpAndStopsAtEnd(t *testing.T) {
	ctx := context.Background()
	// Started a second ago at 100/s: the first 100 events are overdue and
	// come at once; none is due at or after the end.
	start := time.Now().Add(-time.Second)
	p := NewPacer(start, 100, 1000)
	end := start.Add(500 * time.Millisecond)
	var count int
	for {
		_, due, ok := p.Next(ctx, end)
		if !ok {
			break
		}
		if !due.Before(end) {
			t.Fatalf("event due %v after the end", due.Sub(end))
		}
		count++
	}
	if count != 50 {
		t.Fatalf("%d events before the end, want 50", count)
	}
}

func TestPacerStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := NewPacer(time.Now().Add(time.Hour), 1, 10)
	cancel()
	if _, _, ok := p.Next(ctx, time.Now().Add(2*time.Hour)); ok {
		t.Fatal("Next went on after the context ended")
	}
}
