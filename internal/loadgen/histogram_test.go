package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactPercentile is the nearest-rank percentile of vs, the reference the
// histogram must approximate.
func exactPercentile(vs []time.Duration, p float64) time.Duration {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

func TestHistogramPercentile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gen := func(n int, f func(i int) time.Duration) []time.Duration {
		vs := make([]time.Duration, n)
		for i := range vs {
			vs[i] = f(i)
		}
		return vs
	}
	tests := []struct {
		name   string
		values []time.Duration
	}{
		{"empty", nil},
		{"one value", []time.Duration{7 * time.Millisecond}},
		{"constant", gen(1000, func(int) time.Duration { return 3 * time.Millisecond })},
		{"exact below 256ns", gen(200, func(i int) time.Duration { return time.Duration(i) })},
		{"uniform 1µs to 1s", gen(10_000, func(int) time.Duration { return time.Microsecond + time.Duration(rng.Int64N(int64(time.Second))) })},
		{"long tail", gen(1000, func(i int) time.Duration {
			if i%100 == 0 {
				return 2*time.Second + time.Duration(i)*time.Millisecond
			}
			return time.Millisecond + time.Duration(i)*time.Microsecond
		})},
		{"exponential", gen(5000, func(int) time.Duration { return time.Duration(rng.ExpFloat64() * float64(5*time.Millisecond)) })},
		{"beyond the range", []time.Duration{time.Millisecond, 30 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, v := range tt.values {
				h.record(v)
			}
			for _, p := range []float64{1, 50, 90, 99, 99.9, 100} {
				want := exactPercentile(tt.values, p)
				got := h.percentile(p)
				// Never below the true value, at most 1% above (and the
				// top bucket is capped by the exact maximum).
				if got < want || float64(got) > float64(want)*1.01 {
					t.Errorf("p%v: got %v, want %v (to within +1%%)", p, got, want)
				}
			}
			if want := exactPercentile(tt.values, 100); h.max != want {
				t.Errorf("max: got %v, want %v", h.max, want)
			}
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	var all, a, b histogram
	for i := range 2000 {
		d := time.Duration(i*i) * time.Microsecond
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	if a != all {
		t.Fatalf("merged halves differ from the whole: n %d/%d, max %v/%v", a.n, all.n, a.max, all.max)
	}
}

func TestHistogramBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		v := rng.Uint64N(1 << uint(1+rng.IntN(40)))
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("value %d: bucket %d outside 0..%d", v, i, histBuckets-1)
		}
		hi := bucketHigh(i)
		if hi < v || float64(hi) > float64(v)*(1+1.0/histSub)+1 {
			t.Fatalf("value %d: bucket %d ends at %d, want %d..%d", v, i, hi, v, uint64(float64(v)*(1+1.0/histSub)))
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d: in bucket %d but the bucket before ends at %d", v, i, bucketHigh(i-1))
		}
	}
}

func TestVisibleQuantile(t *testing.T) {
	before := serverStats{ok: true, count: 10, buckets: map[float64]float64{0.01: 10, 0.1: 10, 1: 10, math.Inf(1): 10}}
	after := serverStats{ok: true, count: 110, buckets: map[float64]float64{0.01: 60, 0.1: 100, 1: 110, math.Inf(1): 110}}
	tests := []struct {
		q        float64
		min, max time.Duration
	}{
		{0.5, 9 * time.Millisecond, 10 * time.Millisecond},      // 50 of 100 new ones are at or under 10ms
		{0.99, 900 * time.Millisecond, 1000 * time.Millisecond}, // the last 10 are in (0.1s, 1s]
	}
	for _, tt := range tests {
		got, n := visibleQuantile(before, after, tt.q)
		if n != 100 || got < tt.min || got > tt.max {
			t.Errorf("q%.2f = %v over %v, want %v..%v over 100", tt.q, got, n, tt.min, tt.max)
		}
	}
	if got, n := visibleQuantile(before, serverStats{}, 0.5); got != 0 || n != 0 {
		t.Errorf("no metrics: got %v over %v, want 0", got, n)
	}
}
