package loadgen

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// String is the report for people: one line per aspect.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "format       %s, %d events per request, concurrency %d\n", r.Format, r.BatchSize, r.Concurrency)
	if r.Duration <= 0 {
		b.WriteString("window       nothing measured: sending ended within the warm-up\n")
	} else {
		fmt.Fprintf(&b, "window       %.2fs measured\n", r.Duration.Seconds())
		fmt.Fprintf(&b, "requests     %d acknowledged, %.1f/s\n", r.Requests, r.RequestsPerSec)
		fmt.Fprintf(&b, "events       %d acknowledged, %.1f/s\n", r.Events, r.EventsPerSec)
		fmt.Fprintf(&b, "latency      p50 %s  p90 %s  p99 %s  max %s\n", fmtLatency(r.P50), fmtLatency(r.P90), fmtLatency(r.P99), fmtLatency(r.Max))
	}
	b.WriteString("errors       ")
	if len(r.Errors) == 0 {
		b.WriteString("none")
	}
	for i, k := range slices.Sorted(maps.Keys(r.Errors)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, r.Errors[k])
	}
	b.WriteByte('\n')
	fmt.Fprintf(&b, "acked        %d events in the whole run, warm-up included\n", r.Acked)
	switch {
	case r.VerifySkipped:
		b.WriteString("verified     not checked (no admin token, or the run stopped first)\n")
	case r.Missing == 0 && r.Duplicates == 0:
		fmt.Fprintf(&b, "verified     all %d stored once; the last stored %.2f-%.2fs after the last acknowledgement (between two passes through the events API)\n", r.Verified, r.VerifyAfterSeconds, r.VerifySeconds)
	default:
		fmt.Fprintf(&b, "verified     FAILED: %d of %d acknowledged stored, %d missing, %d duplicate copies (after %.2fs)\n", r.Verified, r.Acked, r.Missing, r.Duplicates, r.VerifySeconds)
	}
	if r.VisibleSamples > 0 {
		fmt.Fprintf(&b, "visible      gateway to profile store: p50 %s  p99 %s over %.0f events (server histogram)\n", fmtLatency(r.VisibleP50), fmtLatency(r.VisibleP99), r.VisibleSamples)
	}
	if r.ServerRSSBytes > 0 {
		fmt.Fprintf(&b, "server rss   %.0f MiB at the end\n", r.ServerRSSBytes/(1<<20))
	}
	return b.String()
}

func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}
