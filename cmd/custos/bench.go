package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/custos-cdp/custos/internal/loadgen"
)

// benchCommand runs "custos bench": realistic traffic against a running
// server, a report of acknowledged throughput and latency on stdout, and,
// with an admin token, a check that every acknowledged event was stored
// once. Progress goes to stderr. It fails when events are missing or
// stored twice.
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		baseURL       = fs.String("url", "http://127.0.0.1:8080", "base URL of the server (env CUSTOS_BENCH_URL)")
		writeKey      = fs.String("write-key", "", "write key of the source to send to (env CUSTOS_BENCH_WRITE_KEY)")
		writeSecret   = fs.String("write-secret", "", "write secret, for --format mparticle (env CUSTOS_BENCH_WRITE_SECRET)")
		adminToken    = fs.String("admin-token", "", "admin API token for verification; empty skips it (env CUSTOS_BENCH_ADMIN_TOKEN)")
		format        = fs.String("format", loadgen.FormatSegment, "wire format: segment or mparticle")
		batch         = fs.Int("batch", 1, "events per request: 1 sends /v1/track (segment) or a one-event /v2/events batch")
		concurrency   = fs.Int("concurrency", loadgen.DefaultConcurrency, "concurrent connections, each sending its next request when the last is answered")
		duration      = fs.Duration("duration", 20*time.Second, "measured sending time, after the warm-up; 0 with --requests for a count bound only")
		requests      = fs.Int("requests", 0, "stop after this many requests (0: by --duration)")
		users         = fs.Int("users", loadgen.DefaultUsers, "distinct users the events spread over")
		warmup        = fs.Duration("warmup", loadgen.DefaultWarmup, "sending left out of the numbers; 0 for none")
		verifyTimeout = fs.Duration("verify-timeout", loadgen.DefaultVerifyTimeout, "how long to wait for every acknowledged event to be stored")
		gzipBodies    = fs.Bool("gzip", false, "send gzip-compressed bodies")
		asJSON        = fs.Bool("json", false, "print the report as JSON")
		rate          = fs.Float64("rate", 0, "requests per second in all; 0 sends as fast as answers come")
	)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: custos bench [flags]\n\nSends load to a running server, reports acknowledged events/s and latency,\nthen checks through the admin API that every acknowledged event was stored once.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "custos bench: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, o := range []struct {
		flag, env string
		p         *string
	}{
		{"url", "CUSTOS_BENCH_URL", baseURL},
		{"write-key", "CUSTOS_BENCH_WRITE_KEY", writeKey},
		{"write-secret", "CUSTOS_BENCH_WRITE_SECRET", writeSecret},
		{"admin-token", "CUSTOS_BENCH_ADMIN_TOKEN", adminToken},
	} {
		if v := os.Getenv(o.env); !given[o.flag] && v != "" {
			*o.p = v
		}
	}
	if *duration < 0 || *warmup < 0 {
		fmt.Fprintln(stderr, "custos bench: --duration and --warmup must not be negative")
		return errUsage
	}
	if *warmup == 0 {
		*warmup = -1 // loadgen reads 0 as its default and a negative warm-up as none
	}

	rep, err := loadgen.Run(ctx, loadgen.Config{Rate: *rate,
		URL: *baseURL, WriteKey: *writeKey, WriteSecret: *writeSecret, AdminToken: *adminToken,
		Format: *format, BatchSize: *batch, Concurrency: *concurrency,
		Duration: *duration, Requests: *requests, Users: *users, Warmup: *warmup,
		VerifyTimeout: *verifyTimeout, Gzip: *gzipBodies, Out: stderr,
	})
	if err != nil {
		if rep.Acked > 0 || len(rep.Errors) > 0 {
			printBenchReport(stdout, rep, *asJSON)
		}
		return fmt.Errorf("bench: %w", err)
	}
	if err := printBenchReport(stdout, rep, *asJSON); err != nil {
		return err
	}
	if rep.Missing > 0 || rep.Duplicates > 0 {
		return fmt.Errorf("bench: %d acknowledged events missing, %d extra stored copies", rep.Missing, rep.Duplicates)
	}
	return nil
}

// benchJSON is the --json report: durations in seconds and milliseconds,
// so that BENCHMARKS.md tooling reads plain numbers.
type benchJSON struct {
	Format          string           `json:"format"`
	Concurrency     int              `json:"concurrency"`
	BatchSize       int              `json:"batch_size"`
	DurationSeconds float64          `json:"duration_seconds"`
	Requests        int64            `json:"requests"`
	Events          int64            `json:"events"`
	RequestsPerSec  float64          `json:"requests_per_sec"`
	EventsPerSec    float64          `json:"events_per_sec"`
	P50Millis       float64          `json:"p50_ms"`
	P90Millis       float64          `json:"p90_ms"`
	P99Millis       float64          `json:"p99_ms"`
	MaxMillis       float64          `json:"max_ms"`
	Errors          map[string]int64 `json:"errors"`
	Acked           int64            `json:"acked"`
	VerifySkipped   bool             `json:"verify_skipped"`
	Verified        int64            `json:"verified"`
	Missing         int64            `json:"missing"`
	Duplicates      int64            `json:"duplicates"`
	VerifySeconds   float64          `json:"verify_seconds"`
	VerifyAfter     float64          `json:"verify_after_seconds"`
}

func printBenchReport(w io.Writer, r loadgen.Report, asJSON bool) error {
	if !asJSON {
		_, err := io.WriteString(w, r.String())
		return err
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	err := enc.Encode(benchJSON{
		Format: r.Format, Concurrency: r.Concurrency, BatchSize: r.BatchSize,
		DurationSeconds: r.Duration.Seconds(), Requests: r.Requests, Events: r.Events,
		RequestsPerSec: r.RequestsPerSec, EventsPerSec: r.EventsPerSec,
		P50Millis: ms(r.P50), P90Millis: ms(r.P90), P99Millis: ms(r.P99), MaxMillis: ms(r.Max),
		Errors: r.Errors, Acked: r.Acked, VerifySkipped: r.VerifySkipped,
		Verified: r.Verified, Missing: r.Missing, Duplicates: r.Duplicates, VerifySeconds: r.VerifySeconds, VerifyAfter: r.VerifyAfterSeconds,
	})
	if err != nil {
		return fmt.Errorf("bench: print report: %w", err)
	}
	return nil
}
