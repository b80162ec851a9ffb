package bench

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	// Bucket bounds are contiguous, and each value falls in the bucket
	// whose bounds hold it.
	prevHi := uint64(0)
	for i := 1; i < histIndex(1<<histMaxBits-1)+1; i++ {
		lo, hi := histBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: [%d, %d]", i, lo, hi)
		}
		if histIndex(lo) != i || histIndex(hi) != i {
			t.Fatalf("bucket %d [%d, %d]: index(lo)=%d index(hi)=%d", i, lo, hi, histIndex(lo), histIndex(hi))
		}
		// Relative width below 1/128 of the bucket's values.
		if lo >= 1<<histSubBits && float64(hi-lo+1)/float64(lo) > 1.0/127 {
			t.Fatalf("bucket %d [%d, %d] is too wide", i, lo, hi)
		}
		prevHi = hi
	}
	if got := histIndex(1 << 62); got >= histBuckets {
		t.Fatalf("huge value lands in bucket %d of %d", got, histBuckets)
	}
}

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	var h Histogram
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 100000)
	for i := range vals {
		// Log-uniform from 1 µs to 10 s.
		vals[i] = time.Duration(float64(time.Microsecond) * pow10(rng.Float64()*7))
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > 0.01*float64(exact) {
			t.Errorf("q%.3f = %v, exact %v", q, got, exact)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
		t.Errorf("max %v min %v, want %v %v", h.Max(), h.Min(), vals[len(vals)-1], vals[0])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count %d", h.Count())
	}
}

func pow10(x float64) float64 {
	r := 1.0
	for x >= 1 {
		r *= 10
		x--
	}
	// 10^x for x in [0, 1) by the series of e^(x ln 10).
	y, term := 1.0, 1.0
	for k := 1; k < 30; k++ {
		term *= x * 2.302585092994046 / float64(k)
		y += term
	}
	return r * y
}

func TestHistogramSmallAndEdgeValues(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 || h.Min() != 0 {
		t.Fatal("empty histogram should read zero")
	}
	h.Record(-5) // counts as zero
	h.Record(0)
	h.Record(100)
	if h.Quantile(0.5) != 0 || h.Quantile(1) != 100 || h.Max() != 100 {
		t.Fatalf("q50 %v q100 %v max %v", h.Quantile(0.5), h.Quantile(1), h.Max())
	}
	h.Record(time.Hour) // beyond the range: counted, max exact
	if h.Max() != time.Hour || h.Quantile(1) != time.Hour {
		t.Fatalf("max %v, q100 %v", h.Max(), h.Quantile(1))
	}
}

func TestHistogramMergeAndJSON(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i) * 37 * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	raw, err := json.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	var b2 Histogram
	if err := json.Unmarshal(raw, &b2); err != nil {
		t.Fatal(err)
	}
	a.Merge(&b2)
	for _, q := range []float64{0.1, 0.5, 0.99, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%v: merged %v, direct %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Mean() != all.Mean() || a.Max() != all.Max() || a.Min() != all.Min() {
		t.Errorf("merged count/mean/max/min %d %v %v %v, direct %d %v %v %v",
			a.Count(), a.Mean(), a.Max(), a.Min(), all.Count(), all.Mean(), all.Max(), all.Min())
	}
	if err := json.Unmarshal([]byte(`{"buckets":[[999999,1]]}`), new(Histogram)); err == nil {
		t.Error("a bucket out of range was accepted")
	}
}

func TestHistogramRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(1234567) }); n != 0 {
		t.Fatalf("Record allocates %v times", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i))
	}
}
