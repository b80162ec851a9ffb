package stats

import (
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func TestBookCountsWindowsAndMerges(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	ua1, ua2, api := NewBook(), NewBook(), NewBook()
	for _, b := range []*Book{ua1, ua2, api} {
		b.Now = clock
	}
	ua1.Session("acme", "v2", 1)
	ua1.Session("acme", "v2", 1)
	ua2.Session("acme", "v1", 1)
	ua2.Session("acme", "v1", -1)
	ua2.Session("acme", "v1", 1)
	ua1.Add("acme", Deliveries, 10)
	api.Add("acme", Messages, 3)
	for i := range 100 {
		ua1.RTT("acme", time.Duration(100+i%3)*time.Millisecond)
	}
	ua2.RTT("acme", 900*time.Millisecond)
	api.Lag("acme", 40*time.Millisecond)
	api.Lag("acme", 30*time.Millisecond)
	ua1.Add("other", Messages, 7)

	// Two minutes on: the minute is empty, the hour still counts.
	now = now.Add(2 * time.Minute)
	api.Add("acme", Messages, 2)
	st := Merge("acme", []Report{ua1.Report("acme", "ua"), ua2.Report("acme", "ua"), api.Report("acme", "api")}, now)
	if st.Processes["ua"] != 2 || st.Processes["api"] != 1 {
		t.Errorf("processes %v", st.Processes)
	}
	if st.Sessions.Total != 3 || st.Sessions.ByVersion["v2"] != 2 || st.Sessions.ByVersion["v1"] != 1 {
		t.Errorf("sessions %+v", st.Sessions)
	}
	if st.Messages != (kaiwa.WindowCount{LastMinute: 2, LastHour: 5}) || st.Deliveries != (kaiwa.WindowCount{LastMinute: 0, LastHour: 10}) {
		t.Errorf("messages %+v deliveries %+v", st.Messages, st.Deliveries)
	}
	if st.RTT.Samples != 101 || st.RTT.P50 < 100 || st.RTT.P50 > 102 || st.RTT.P99 < 100 || st.RTT.P99 > 103 {
		t.Errorf("rtt %+v", st.RTT)
	}
	if st.LogWriter.LagMS != 0 {
		t.Errorf("a lag older than a minute counts: %d", st.LogWriter.LagMS)
	}
	if o := Merge("other", []Report{ua1.Report("other", "ua")}, now); o.Messages.LastHour != 7 || o.Sessions.Total != 0 {
		t.Errorf("other %+v", o)
	}
	// Six minutes on, the round-trip times have aged out.
	now = now.Add(6 * time.Minute)
	if r := ua1.Report("acme", "ua"); len(r.RTT) != 0 {
		t.Errorf("old round-trip times kept: %v", r.RTT)
	}
}

func TestBucketsAreMonotonicAndClose(t *testing.T) {
	t.Parallel()
	prev := -1
	for ms := range 60_000 {
		b := bucket(time.Duration(ms) * time.Millisecond)
		if b < prev {
			t.Fatalf("bucket(%d ms) = %d < %d", ms, b, prev)
		}
		prev = b
		if mid := bucketMS(b); ms > 0 && (mid < float64(ms)*0.97 || mid > float64(ms)*1.03+1) {
			t.Fatalf("bucket of %d ms reads as %.1f ms", ms, mid)
		}
	}
}
