package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/workload"
)

// benchProcessingCommand measures the processor stage on its own: a
// generated workload (many people, Zipf-skewed traffic, anonymous visits
// that log in and merge) is applied in log-entry-sized batches by
// concurrent workers, exactly as the processor applies log entries, to a
// fresh SQLite or PostgreSQL database.
func benchProcessingCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench-processing", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", "", "PostgreSQL URL of an EMPTY database; empty means SQLite in --data-dir")
	dataDir := fs.String("data-dir", "", "directory for SQLite and the master key (default: a new temporary directory)")
	events := fs.Int("events", 1_000_000, "events to apply")
	people := fs.Int("people", 100_000, "distinct people")
	journeys := fs.Float64("journeys", 0.2, "share of people who return anonymously and log in")
	batch := fs.Int("batch", 250, "events per batch (a log entry)")
	workers := fs.Int("workers", 2, "batches applied at once")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here")
	backlog := fs.Int("dedup-backlog", 0, "message ids recorded before the run, spread over the week before it as steady earlier traffic leaves them; "+
		"after the run the oldest fifth is pruned while one-event batches are timed")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	dir := *dataDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "custos-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	cfg := config{DataDir: dir, DatabaseURL: *dbURL}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := db.Migrate(ctx, log); err != nil {
		return err
	}
	if err := bootstrap(ctx, db, bootstrapCredentials{}, io.Discard, time.Now); err != nil {
		return err
	}
	wss, err := db.Workspaces().List(ctx)
	if err != nil || len(wss) == 0 {
		return fmt.Errorf("workspace: %v", err)
	}
	v, err := openVault(cfg, db)
	if err != nil {
		return err
	}
	profiles := sqlstore.NewProfiles(db, v)
	const source = cdp.SourceID("src_bench")
	runStart := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	gen := workload.New(workload.Config{People: *people, Events: *events, Journeys: *journeys, Seed: 1, Start: runStart, Workspace: wss[0].ID, Source: source})
	const window = 7 * 24 * time.Hour
	if *backlog > 0 {
		t0 := time.Now()
		if err := db.Events().Backfill(ctx, source, *backlog, runStart.Add(-window), runStart); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%d message ids recorded beforehand in %s\n", *backlog, time.Since(t0).Round(time.Millisecond))
	}

	batches := make(chan []cdp.Event, *workers*2)
	go func() {
		defer close(batches)
		for {
			b := make([]cdp.Event, 0, *batch)
			for len(b) < *batch {
				ev, ok := gen.Next()
				if !ok {
					break
				}
				b = append(b, ev)
			}
			if len(b) == 0 {
				return
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// The server's maintenance (planner statistics) runs as in serve.
	maint, stopMaint := context.WithCancel(ctx)
	defer stopMaint()
	go keepAnalyzed(maint, db, slog.New(slog.DiscardHandler))
	var (
		mu        sync.Mutex
		total     cdp.ApplyResult
		latencies []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	start := time.Now()
	progress := *events / 10
	for range *workers {
		wg.Go(func() {
			for b := range batches {
				t0 := time.Now()
				res, err := profiles.Apply(ctx, b)
				d := time.Since(t0)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				before := total.Applied
				total.Applied += res.Applied
				total.Duplicates += res.Duplicates
				total.Merges += res.Merges
				total.ProfilesCreated += res.ProfilesCreated
				total.DroppedIdentities += res.DroppedIdentities
				total.Retries += res.Retries
				latencies = append(latencies, d)
				if progress > 0 && before/progress != total.Applied/progress {
					fmt.Fprintf(stderr, "%d events applied, %.0f/s\n", total.Applied, float64(total.Applied)/time.Since(start).Seconds())
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	pct := percentiles(latencies)
	if err := db.Checkpoint(ctx); err != nil {
		return err
	}
	size, err := storageSize(ctx, db, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database          %s\n", db.Dialect())
	fmt.Fprintf(stdout, "events            %d applied in %s with %d workers, batches of %d\n", total.Applied, elapsed.Round(time.Millisecond), *workers, *batch)
	fmt.Fprintf(stdout, "throughput        %.0f events/s\n", float64(total.Applied)/elapsed.Seconds())
	fmt.Fprintf(stdout, "batch latency     p50 %s  p99 %s  max %s\n", pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	fmt.Fprintf(stdout, "identity graph    %d profiles created, %d merges, %d identities dropped by the rules\n", total.ProfilesCreated, total.Merges, total.DroppedIdentities)
	fmt.Fprintf(stdout, "retries           %d batches started over (a concurrent change to the people they name, or a busy database)\n", total.Retries)
	fmt.Fprintf(stdout, "storage           %.1f MiB (%.1f MiB per million events)\n", float64(size)/(1<<20), float64(size)/(1<<20)/(float64(total.Applied)/1e6))
	if *backlog > 0 {
		fmt.Fprintf(stdout, "                  (the ids recorded beforehand included)\n")
		return benchPrune(ctx, db, profiles, wss[0].ID, source, runStart.Add(-window), window, stdout)
	}
	return nil
}

// benchPrune prunes the oldest fifth of the ids recorded before the run
// (those with a client time: by range; the others by receipt) while
// one-event batches are applied every 20 ms, and reports how long pruning
// took and how long those batches waited meanwhile.
func benchPrune(ctx context.Context, db *sqlstore.DB, profiles *sqlstore.Profiles, ws cdp.WorkspaceID, source cdp.SourceID, from time.Time, window time.Duration, stdout io.Writer) error {
	var (
		latencies []time.Duration
		probeErr  error
		wg        sync.WaitGroup
	)
	stop := make(chan struct{})
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			now := time.Now()
			ev := cdp.Event{MessageID: fmt.Sprintf("probe-%d", i), WorkspaceID: ws, SourceID: source, Format: cdp.FormatSegment,
				Type: cdp.Track, Name: "Probe", Identities: []cdp.Identity{{Type: cdp.UserID, Value: "probe"}},
				Timestamp: now, ClientTime: now, ReceivedAt: now}
			if _, err := profiles.Apply(ctx, []cdp.Event{ev}); err != nil {
				probeErr = err
				return
			}
			latencies = append(latencies, time.Since(now))
		}
	})
	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	n, err := db.Events().PruneMessageIDs(ctx, from.Add(window+time.Hour+window/5), window)
	took := time.Since(t0)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	if probeErr != nil {
		return probeErr
	}
	pct := percentiles(latencies)
	fmt.Fprintf(stdout, "pruning           %d ids in %s (%.0f/s); one-event batches meanwhile: %d, p50 %s  p99 %s  max %s\n",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), len(latencies),
		pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	return nil
}

// percentiles sorts ds and returns its p-quantile function (p = 1: the
// largest).
func percentiles(ds []time.Duration) func(p float64) time.Duration {
	slices.Sort(ds)
	return func(p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		return ds[min(len(ds)-1, int(p*float64(len(ds))))]
	}
}

// storageSize is the bytes the database takes on disk.
func storageSize(ctx context.Context, db *sqlstore.DB, cfg config) (int64, error) {
	if cfg.DatabaseURL == "" {
		var n int64
		for _, f := range []string{"custos.db", "custos.db-wal"} {
			if st, err := os.Stat(filepath.Join(cfg.DataDir, f)); err == nil {
				n += st.Size()
			}
		}
		return n, nil
	}
	conn, err := sql.Open("pgx", cfg.DatabaseURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var n int64
	err = conn.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
	return n, err
}
