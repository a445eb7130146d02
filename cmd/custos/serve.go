package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/custos-cdp/custos/internal/api"
	"github.com/custos-cdp/custos/internal/auth"
	"github.com/custos-cdp/custos/internal/bus"
	"github.com/custos-cdp/custos/internal/forward"
	"github.com/custos-cdp/custos/internal/httpjson"
	"github.com/custos-cdp/custos/internal/ingest"
	"github.com/custos-cdp/custos/internal/outbox"
	"github.com/custos-cdp/custos/internal/processor"
	"github.com/custos-cdp/custos/internal/receipt"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/vault"
)

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func serveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("serve", args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, stderr)
	s, err := start(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

// server is one running custos process and everything it holds open.
type server struct {
	cfg      config
	log      *slog.Logger
	db       *sqlstore.DB
	bus      *bus.Bus
	eventLog *bus.Log
	consumer *bus.Consumer
	http     *http.Server
	listener net.Listener
	ready    chan struct{} // closed once serving; tests wait on it
	debug    *http.Server
	stopBg   context.CancelFunc
	bg       sync.WaitGroup
}

func openDB(ctx context.Context, cfg config) (*sqlstore.DB, error) {
	return sqlstore.Open(ctx, sqlstore.Config{URL: cfg.DatabaseURL, Path: filepath.Join(cfg.DataDir, "custos.db")})
}

// openBus opens the event log. Its entries are sealed with a key derived
// from the deployment's system key, which every process shares through the
// database and the root key file; the embedded store is encrypted with
// another key derived from it.
func openBus(ctx context.Context, cfg config, v *vault.Vault, log *slog.Logger) (*bus.Bus, error) {
	sys, err := v.SystemKey(ctx, "log")
	if err != nil {
		return nil, err
	}
	busCfg := bus.Config{URL: cfg.NATSURL, Prefix: cfg.NATSPrefix, Replicas: cfg.NATSReplicas,
		EntryKey: vault.DeriveKey(sys, "log-entries")}
	if cfg.NATSURL == "" {
		busCfg.StoreDir = filepath.Join(cfg.DataDir, "jetstream")
		busCfg.StoreKey = vault.DeriveKey(sys, "nats-store")
	}
	return bus.Open(ctx, busCfg, log)
}

func openVault(cfg config, db *sqlstore.DB) (*vault.Vault, error) {
	path, create := cfg.masterKey()
	root, err := vault.LoadRoot(path, create)
	if err != nil {
		return nil, err
	}
	return vault.New(root, db.Keys()), nil
}

// start opens the database (migrating it), bootstraps a first start, opens
// the log, starts the processor and listens. It returns with everything
// running except the HTTP server's accept loop, which run starts.
func start(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) (_ *server, err error) {
	s := &server{cfg: cfg, log: log, ready: make(chan struct{})}
	defer func() {
		if err != nil {
			s.close(context.Background())
		}
	}()
	if s.db, err = openDB(ctx, cfg); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err = s.db.Migrate(ctx, log); err != nil {
		return nil, err
	}
	if err = bootstrap(ctx, s.db, cfg.Bootstrap, stdout, time.Now); err != nil {
		return nil, fmt.Errorf("first start: %w", err)
	}
	v, err := openVault(cfg, s.db)
	if err != nil {
		return nil, err
	}
	profiles := sqlstore.NewProfiles(s.db, v)
	if s.bus, err = openBus(ctx, cfg, v, log); err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.eventLog = s.bus.NewLog(bus.LogConfig{MaxPendingBytes: cfg.MaxPendingBytes}, reg)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "custos_log_queue_depth",
		Help: "Event-log entries not yet applied by the processor.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := s.bus.EventsBacklog(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
	bgCtx, stopBg := context.WithCancel(context.Background())
	s.stopBg = stopBg
	if cfg.has("processor") {
		relay := outbox.New(s.db.Outbox(), s.bus, log, 0)
		proc := processor.New(profiles, log, reg)
		proc.OnApplied(relay.Wake)
		s.consumer, err = s.bus.ConsumeEvents(ctx, bus.ConsumeConfig{Workers: cfg.Workers, AckWait: cfg.LogAckWait}, proc.Handle)
		if err != nil {
			return nil, fmt.Errorf("processor: %w", err)
		}
		s.bg.Go(func() { s.pruneMessageIDs(bgCtx) })
		s.bg.Go(func() { keepAnalyzed(bgCtx, s.db, s.log) })
		s.bg.Go(func() { relay.Run(bgCtx) })
	}
	fwd := &forwarding{registry: registry(), vault: v, bus: s.bus, allowPrivate: cfg.AllowPrivate}
	if cfg.has("router") {
		leases, err := s.bus.Leases(ctx, holderName())
		if err != nil {
			return nil, fmt.Errorf("router leases: %w", err)
		}
		m := &forward.Manager{Destinations: profiles.Destinations(), Queues: s.bus, Leases: leases, Store: profiles.Deliveries(),
			Registry: fwd.registry, Configure: fwd.Configure, Log: log, Metrics: forward.NewMetrics(reg),
			Policy: forward.Policy{MaxDelay: cfg.MaxRetryDelay}}
		s.bg.Go(func() { m.Run(bgCtx) })
	}
	if cfg.DebugAddr != "" {
		if err := s.serveDebug(cfg.DebugAddr); err != nil {
			return nil, err
		}
	}

	if s.listener, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	mux := http.NewServeMux()
	if cfg.has("api") || cfg.has("dsr") {
		dsrAPI, err := s.startDSR(ctx, bgCtx, cfg, profiles, v, reg)
		if err != nil {
			return nil, fmt.Errorf("data subject requests: %w", err)
		}
		if cfg.has("api") {
			dsrAPI.Register(mux)
		}
	}
	if cfg.has("gateway") {
		ingest.New(ingest.Config{Limits: ingest.DefaultLimits(), Logger: log, Registerer: reg, Consent: consentMapper{profiles.Consent()}},
			auth.NewSources(s.db.Sources(), 0), s.eventLog).Register(mux)
	}
	if cfg.has("api") {
		s.registerAPI(mux, cfg, profiles, v, fwd)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	s.http = &http.Server{
		Handler:           withRequestTimeout(mux, cfg.RequestTimeout),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.RequestTimeout,
		WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// registerAPI adds the admin API.
func (s *server) registerAPI(mux *http.ServeMux, cfg config, profiles *sqlstore.Profiles, v *vault.Vault, fwd *forwarding) {
	api.New(api.Config{Logger: s.log, Timeout: cfg.RequestTimeout}, api.Deps{
		Auth:     auth.NewTokens(s.db.Tokens()),
		Profiles: profiles,
		Rules:    profiles.Rules(),
		Consent:  profiles.Consent(),
		Ledger:   profiles,
		Log:      s.eventLog,
		Receipts: receipt.New(profiles.Consent(), v, "custos"),
		Sealer:   v,

		Destinations: profiles.Destinations(),
		Deliveries:   profiles.Deliveries(),
		Forwarding:   fwd,

		Tokens: s.db.Tokens(),
		Audit:  profiles,
	}).Register(mux)
}

// serveDebug serves Go's profiling handlers on their own listener, never on
// the public one.
func (s *server) serveDebug(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.debug = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.debug.Serve(l) }()
	return nil
}

// withRequestTimeout gives every request a deadline its handlers see.
func withRequestTimeout(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{"database": "ok", "log": "ok"}
	code := http.StatusOK
	if err := s.db.Ping(ctx); err != nil {
		status["database"], code = "unavailable", http.StatusServiceUnavailable
	}
	if err := s.bus.Ready(ctx); err != nil {
		status["log"], code = "unavailable", http.StatusServiceUnavailable
	}
	httpjson.Write(w, code, status)
}

// run serves until ctx ends (SIGTERM or SIGINT), then drains: it stops
// accepting, lets in-flight requests finish (each waits for its events to
// be durable), writes what was accepted, lets the processor finish what it
// holds, and closes everything.
func (s *server) run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.listener) }()
	s.log.Info("custos serving", "addr", s.listener.Addr().String(), "database", s.db.Dialect(),
		"log", map[bool]string{true: "embedded", false: "external"}[s.bus.Embedded()])
	close(s.ready)
	var serveErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down")
	case serveErr = <-errc:
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.close(drainCtx)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(serveErr, err)
	}
	if err == nil {
		s.log.Info("stopped cleanly")
	}
	return err
}

// keepAnalyzed keeps the database's planner statistics fresh (see
// sqlstore.DB.Analyze) until ctx ends: a cheap check every 2 seconds on
// PostgreSQL, where a table growing from nothing (a new installation under
// load) is scanned whole by every lookup until it is analyzed, and every
// 10 seconds on SQLite, whose planner does not cache plans across
// connections. serve and bench-processing both run it.
func keepAnalyzed(ctx context.Context, db *sqlstore.DB, log *slog.Logger) {
	every := 10 * time.Second
	if db.Dialect() == "postgres" {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := db.Analyze(ctx); err != nil && ctx.Err() == nil {
			log.Warn("analyzing tables failed", "err", err)
		} else if n > 0 {
			log.Debug("analyzed tables", "count", n)
		}
	}
}

// pruneMessageIDs forgets message ids older than the deduplication window,
// every minute, in transactions of a few thousand ids each, so processing
// never waits long behind it.
func (s *server) pruneMessageIDs(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		n, err := s.db.Events().PruneMessageIDs(ctx, time.Now(), s.cfg.DedupWindow)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("pruning message ids failed", "err", err)
		} else if n > 0 {
			s.log.Debug("pruned message ids past the deduplication window", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *server) close(ctx context.Context) error {
	if s.stopBg != nil {
		s.stopBg()
		s.bg.Wait()
	}
	var errs []error
	if s.debug != nil {
		_ = s.debug.Close()
	}
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	} else if s.listener != nil {
		errs = append(errs, s.listener.Close())
	}
	if s.eventLog != nil {
		errs = append(errs, s.eventLog.Close(ctx))
	}
	if s.consumer != nil {
		errs = append(errs, s.consumer.Stop(ctx))
	}
	if s.bus != nil {
		errs = append(errs, s.bus.Close())
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}
