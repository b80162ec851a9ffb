package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram layout: values below 2^histSubBits are counted exactly; above,
// every power of two is split into 2^(histSubBits-1) equal buckets, so a
// bucket's width is at most 1/128 of its values (HdrHistogram's
// log-linear scheme). Values are nanoseconds; anything above
// 2^histMaxBits ns (about 18 minutes) lands in the last bucket.
const (
	histSubBits = 8
	histHalf    = 1 << (histSubBits - 1)
	histMaxBits = 40
	histBuckets = (histMaxBits-histSubBits+2)*histHalf + histHalf
)

// Histogram records durations in log-linear buckets: constant memory, no
// allocation per sample, a relative error below 1%. Record is safe for
// concurrent use (atomic counters); Quantile and the other readers see a
// consistent enough picture while recording goes on and an exact one
// after it stops.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
	min    atomic.Uint64 // min+1, so that zero means "none yet"
}

// histLast is the bucket of every value from 2^histMaxBits − 1 up.
var histLast = histIndex(1<<histMaxBits - 1)

// histIndex returns the bucket of value v.
func histIndex(v uint64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	if v >= 1<<histMaxBits {
		v = 1<<histMaxBits - 1
	}
	shift := bits.Len64(v) - histSubBits
	mant := v >> shift // in [histHalf, 2*histHalf)
	return (shift+1)*histHalf + int(mant) - histHalf
}

// histBounds returns the smallest and largest value of bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < 1<<histSubBits {
		return uint64(i), uint64(i)
	}
	shift := i/histHalf - 1
	mant := uint64(i%histHalf + histHalf)
	return mant << shift, (mant+1)<<shift - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.min.Load()
		if (m != 0 && v+1 >= m) || h.min.CompareAndSwap(m, v+1) {
			break
		}
	}
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest recorded value (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min returns the smallest recorded value (exact), 0 when empty.
func (h *Histogram) Min() time.Duration {
	if m := h.min.Load(); m > 0 {
		return time.Duration(m - 1)
	}
	return 0
}

// Mean returns the average of the recorded values.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value below or at which a fraction q (0 to 1) of
// the recorded values lie: the upper bound of the bucket holding that
// rank, never more than [Histogram.Max]. It is 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			if i == histLast {
				return h.Max() // the overflow bucket: values are clamped into it
			}
			_, hi := histBounds(i)
			return min(time.Duration(hi), h.Max())
		}
	}
	return h.Max()
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
	if m := o.min.Load(); m != 0 && (h.min.Load() == 0 || m < h.min.Load()) {
		h.min.Store(m)
	}
}

// histJSON is a histogram on the wire between worker processes: the
// non-empty buckets as [index, count] pairs.
type histJSON struct {
	Buckets [][2]uint64 `json:"buckets"`
	Sum     uint64      `json:"sum"`
	Max     uint64      `json:"max"`
	Min     uint64      `json:"min"`
}

// MarshalJSON encodes the histogram compactly (non-empty buckets only).
func (h *Histogram) MarshalJSON() ([]byte, error) {
	j := histJSON{Buckets: [][2]uint64{}, Sum: h.sum.Load(), Max: h.max.Load(), Min: h.min.Load()}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			j.Buckets = append(j.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON wrote into an empty histogram.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var n uint64
	for _, bc := range j.Buckets {
		if bc[0] >= histBuckets {
			return fmt.Errorf("histogram bucket %d out of range", bc[0])
		}
		h.counts[bc[0]].Store(bc[1])
		n += bc[1]
	}
	h.n.Store(n)
	h.sum.Store(j.Sum)
	h.max.Store(j.Max)
	h.min.Store(j.Min)
	return nil
}
