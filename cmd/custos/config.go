package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// errUsage means the flags were wrong and usage was printed.
var errUsage = errors.New("usage")

// config is every setting of the server. It is filled from flags and the
// environment here and handed to packages as their own Config structs.
type config struct {
	Addr            string
	DataDir         string
	DatabaseURL     string
	MasterKeyFile   string
	NATSURL         string
	NATSPrefix      string
	NATSReplicas    int
	LogLevel        string
	DedupWindow     time.Duration
	Workers         int
	LogAckWait      time.Duration
	MaxPendingBytes int64
	ShutdownTimeout time.Duration
	RequestTimeout  time.Duration
	Roles           string
	DebugAddr       string
	AllowPrivate    bool
	MaxRetryDelay   time.Duration
	PublicURL       string
	DSRDomain       string
	DSRKeyFile      string
	DSRCertFile     string
	DSRWaiting      time.Duration
	DSRResultsTTL   time.Duration

	// Bootstrap fixes the first start's credentials; environment only.
	Bootstrap bootstrapCredentials
}

// option is one row of the configuration table: a flag, its environment
// variable, its default and what it does. The README's table is this one.
type option struct {
	flag, env, def, usage string
	set                   func(string) error
}

// optionValue holds a flag's text until the table's setter parses it; a
// boolean option may be given bare (--allow-private-networks).
type optionValue struct {
	s      string
	isBool bool
}

func (v *optionValue) String() string {
	if v == nil {
		return ""
	}
	return v.s
}
func (v *optionValue) Set(s string) error { v.s = s; return nil }
func (v *optionValue) IsBoolFlag() bool   { return v.isBool }

func stringOpt(p *string) func(string) error { return func(s string) error { *p = s; return nil } }

func intOpt(p *int) func(string) error {
	return func(s string) error {
		n, err := strconv.Atoi(s)
		*p = n
		return err
	}
}

func int64Opt(p *int64) func(string) error {
	return func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		*p = n
		return err
	}
}

func boolOpt(p *bool) func(string) error {
	return func(s string) error {
		b, err := strconv.ParseBool(s)
		*p = b
		return err
	}
}

func durationOpt(p *time.Duration) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		*p = d
		return err
	}
}

func (c *config) options() []option {
	return []option{
		{"addr", "CUSTOS_ADDR", ":8080", "address to listen on", stringOpt(&c.Addr)},
		{"data-dir", "CUSTOS_DATA_DIR", "./custos-data", "directory for the SQLite database, the embedded log and keys", stringOpt(&c.DataDir)},
		{"database-url", "CUSTOS_DATABASE_URL", "", "PostgreSQL URL (postgres://...); empty means SQLite in the data dir", stringOpt(&c.DatabaseURL)},
		{"master-key-file", "CUSTOS_MASTER_KEY_FILE", "", "root key file (a Tink keyset); empty means <data-dir>/master.key, created on first start", stringOpt(&c.MasterKeyFile)},
		{"nats-url", "CUSTOS_NATS_URL", "", "external NATS JetStream URL (nats://...); empty means embedded", stringOpt(&c.NATSURL)},
		{"nats-prefix", "CUSTOS_NATS_PREFIX", "custos", "namespace of streams and subjects on NATS", stringOpt(&c.NATSPrefix)},
		{"nats-replicas", "CUSTOS_NATS_REPLICAS", "1", "stream replicas on an external cluster (3 on a three-node cluster)", intOpt(&c.NATSReplicas)},
		{"log-level", "CUSTOS_LOG_LEVEL", "info", "debug, info, warn or error", stringOpt(&c.LogLevel)},
		{"dedup-window", "CUSTOS_DEDUP_WINDOW", "168h", "how long a message id is remembered per source for deduplication", durationOpt(&c.DedupWindow)},
		{"processor-workers", "CUSTOS_PROCESSOR_WORKERS", "2", "processor transactions at once (each applies the log entries waiting: up to 1000 events, 4000 while the processor is behind)", intOpt(&c.Workers)},
		{"log-ack-wait", "CUSTOS_LOG_ACK_WAIT", "30s", "time before an entry held by a crashed worker is handed to another", durationOpt(&c.LogAckWait)},
		{"max-pending-bytes", "CUSTOS_MAX_PENDING_BYTES", "67108864", "accepted bytes waiting for a log write before the gateway answers 503", int64Opt(&c.MaxPendingBytes)},
		{"shutdown-timeout", "CUSTOS_SHUTDOWN_TIMEOUT", "30s", "time to drain in-flight work on SIGTERM", durationOpt(&c.ShutdownTimeout)},
		{"request-timeout", "CUSTOS_REQUEST_TIMEOUT", "30s", "deadline of each HTTP request", durationOpt(&c.RequestTimeout)},
		{"roles", "CUSTOS_ROLES", "gateway,processor,router,dsr,api", "what this process does: any of gateway (ingestion), processor (applies the log), router (delivers to destinations), dsr (data subject requests), api (admin and OpenDSR APIs)", stringOpt(&c.Roles)},
		{"public-url", "CUSTOS_PUBLIC_URL", "", "where this deployment is reached from outside (export links, OpenDSR certificate and callbacks); empty means http://<addr>", stringOpt(&c.PublicURL)},
		{"dsr-domain", "CUSTOS_DSR_DOMAIN", "", "processor domain in OpenDSR signatures; empty means the public URL's host", stringOpt(&c.DSRDomain)},
		{"dsr-key-file", "CUSTOS_DSR_KEY_FILE", "", "PEM RSA key that signs OpenDSR answers; empty means one created on first start and kept sealed in the database", stringOpt(&c.DSRKeyFile)},
		{"dsr-cert-file", "CUSTOS_DSR_CERT_FILE", "", "PEM certificate of the OpenDSR key (with --dsr-key-file)", stringOpt(&c.DSRCertFile)},
		{"dsr-waiting-period", "CUSTOS_DSR_WAITING_PERIOD", "0s", "time between receipt and the start of work on a request, during which it can be cancelled", durationOpt(&c.DSRWaiting)},
		{"dsr-results-ttl", "CUSTOS_DSR_RESULTS_TTL", "168h", "how long an access or portability export can be downloaded", durationOpt(&c.DSRResultsTTL)},
		{"forward-max-retry-delay", "CUSTOS_FORWARD_MAX_RETRY_DELAY", "5m", "longest wait between two attempts of a delivery (backoff is exponential with jitter)", durationOpt(&c.MaxRetryDelay)},
		{"allow-private-networks", "CUSTOS_ALLOW_PRIVATE_NETWORKS", "false", "let destinations and callbacks reach loopback, private and link-local addresses (tests, local trials)", boolOpt(&c.AllowPrivate)},
		{"debug-addr", "CUSTOS_DEBUG_ADDR", "", "address for Go's pprof handlers (keep it on loopback); empty means off", stringOpt(&c.DebugAddr)},
	}
}

// parseConfig reads flags, then the environment for flags not given, then
// defaults. getenv is os.Getenv outside tests.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	opts := c.options()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	values := make([]*optionValue, len(opts))
	for i, o := range opts {
		values[i] = &optionValue{s: o.def, isBool: o.def == "false" || o.def == "true"}
		fs.Var(values[i], o.flag, fmt.Sprintf("%s (env %s)", o.usage, o.env))
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: custos %s [flags]\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, errUsage
		}
		return c, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "custos %s: unexpected argument %q\n", name, fs.Arg(0))
		return c, errUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for i, o := range opts {
		v := values[i].s
		if !given[o.flag] {
			if e, ok := lookupEnv(getenv, o.env); ok {
				v = e
			}
		}
		if err := o.set(v); err != nil {
			return c, fmt.Errorf("--%s / %s: invalid value", o.flag, o.env)
		}
	}
	c.Bootstrap = bootstrapCredentials{
		WriteKey:    getenv(envBootstrapWriteKey),
		WriteSecret: getenv(envBootstrapWriteSecret),
		AdminToken:  getenv(envBootstrapAdminToken),
	}
	return c, c.validate()
}

func lookupEnv(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

func (c *config) validate() error {
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return errors.New("--database-url must be a postgres:// URL")
	}
	if c.NATSURL != "" && !strings.Contains(c.NATSURL, "://") {
		return errors.New("--nats-url must be a nats:// URL")
	}
	for _, r := range c.NATSPrefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return errors.New("--nats-prefix may hold only letters, digits and '_'")
		}
	}
	if c.NATSPrefix == "" || c.Workers < 1 || c.NATSReplicas < 1 || c.DedupWindow < time.Hour {
		return errors.New("--nats-prefix must be set, --processor-workers and --nats-replicas at least 1, --dedup-window at least 1h")
	}
	for _, r := range strings.Split(c.Roles, ",") {
		switch strings.TrimSpace(r) {
		case "gateway", "processor", "router", "dsr", "api":
		default:
			return errors.New("--roles takes a comma-separated list of gateway, processor, router, dsr and api")
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return errors.New("--log-level must be debug, info, warn or error")
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	c.DataDir = abs
	return nil
}

// has reports whether this process takes a role.
func (c *config) has(role string) bool {
	for _, r := range strings.Split(c.Roles, ",") {
		if strings.TrimSpace(r) == role {
			return true
		}
	}
	return false
}

// masterKey returns the root key file and whether it may be created: only
// the default file in the data dir is created on first start; a file named
// explicitly must exist, so a mistyped path never silently starts a new
// key hierarchy that cannot read the existing data.
func (c *config) masterKey() (string, bool) {
	if c.MasterKeyFile != "" {
		return c.MasterKeyFile, false
	}
	return filepath.Join(c.DataDir, "master.key"), true
}
