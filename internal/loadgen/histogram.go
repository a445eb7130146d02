package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets: values below 256ns are
// exact, above that every power of two is split into 128 buckets, so a
// reported percentile is at most 1/128 (0.8%) above the true value. It has
// a fixed size, so recording never allocates, and histograms merge by
// adding counts. The zero value is empty and ready to use.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// histMaxExp caps the exponent: values from about 2^40ns (18 minutes)
	// up share the last buckets, and max stays exact.
	histMaxExp  = 40 - histSubBits - 1
	histBuckets = (histMaxExp + 2) * histSub
)

func bucketOf(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits - 1
	if e > histMaxExp {
		return histBuckets - 1
	}
	return e*histSub + int(v>>e)
}

// bucketHigh is the largest value that falls in bucket i.
func bucketHigh(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	e := i/histSub - 1
	m := uint64(i%histSub + histSub)
	return (m+1)<<e - 1
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100): the
// smallest recorded value that at least p% of the values do not exceed,
// rounded up to its bucket's upper edge and never above the maximum.
// An empty histogram answers 0.
func (h *histogram) percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == histBuckets-1 {
				return h.max // the clamped bucket has no upper edge
			}
			return min(time.Duration(bucketHigh(i)), h.max)
		}
	}
	return h.max
}
