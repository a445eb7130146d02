package loadgen

import (
	"bufio"
	"context"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// serverStats is what the server's /metrics says at one moment: the
// histogram of ack-to-visible delays (from the gateway receiving an event
// to the processor storing it) and the server's resident memory.
type serverStats struct {
	buckets map[float64]float64 // le -> cumulative count
	count   float64
	rss     float64
	ok      bool
}

const visibleMetric = "custos_processor_visible_seconds"

// scrapeStats reads the server's metrics; a server without them gives a
// zero serverStats.
func scrapeStats(ctx context.Context, client *http.Client, base string) serverStats {
	s := serverStats{buckets: map[float64]float64{}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/metrics", nil)
	if err != nil {
		return s
	}
	resp, err := client.Do(req)
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, found := strings.Cut(line, " ")
		if !found || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, visibleMetric+"_bucket{le=\""):
			le := strings.TrimSuffix(strings.TrimPrefix(name, visibleMetric+"_bucket{le=\""), "\"}")
			b, err := strconv.ParseFloat(le, 64)
			if le == "+Inf" {
				b, err = math.Inf(1), nil
			}
			if err == nil {
				s.buckets[b] = v
				s.ok = true
			}
		case name == visibleMetric+"_count":
			s.count = v
		case name == "process_resident_memory_bytes":
			s.rss = v
		}
	}
	return s
}

// visibleQuantile estimates the q-quantile of the delays observed between
// two scrapes, interpolating linearly inside the bucket that holds it.
func visibleQuantile(before, after serverStats, q float64) (time.Duration, float64) {
	if !after.ok {
		return 0, 0
	}
	bounds := make([]float64, 0, len(after.buckets))
	for b := range after.buckets {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	total := after.count - before.count
	if total <= 0 {
		return 0, 0
	}
	target := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		c := after.buckets[b] - before.buckets[b]
		if c >= target {
			if math.IsInf(b, 1) {
				return time.Duration(prevBound * float64(time.Second)), total
			}
			frac := 0.0
			if c > prevCount {
				frac = (target - prevCount) / (c - prevCount)
			}
			return time.Duration((prevBound + frac*(b-prevBound)) * float64(time.Second)), total
		}
		prevBound, prevCount = b, c
	}
	return time.Duration(prevBound * float64(time.Second)), total
}
