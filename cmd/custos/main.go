// Command custos is the Custos customer data platform in one binary.
//
//	custos serve     run the server (gateway, processor, admin API)
//	custos migrate   apply database migrations and exit
//	custos keys      rotate the master key and rewrap the data keys
//	custos bench     send load to a running server and report what it did
//	custos version   print the version
//
// Every setting is a flag and an environment variable; flags win. Run
// "custos <command> -h" for the list.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: custos <command> [flags]

commands:
  serve     run the server on embedded defaults (SQLite + embedded NATS JetStream),
            or on PostgreSQL + external NATS with --database-url and --nats-url
  migrate   apply database migrations and exit
  keys      key management: "custos keys rotate" adds a master key version and rewraps data keys
  dsr       "custos dsr reapply" re-applies every completed erasure (after a database restore)
  bench     send realistic load to a running server and report throughput and latency
  bench-processing
            measure the processor stage alone on a generated workload
  version   print the version

"custos <command> -h" lists the command's flags and environment variables.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = serveCommand(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = migrateCommand(ctx, args[1:], stderr)
	case "keys":
		err = keysCommand(ctx, args[1:], stdout, stderr)
	case "dsr":
		err = dsrCommand(ctx, args[1:], stdout, stderr)
	case "bench":
		err = benchCommand(ctx, args[1:], stdout, stderr)
	case "bench-processing":
		err = benchProcessingCommand(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "custos", version)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "custos: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if err == errUsage {
			return 2
		}
		fmt.Fprintln(stderr, "custos:", err)
		return 1
	}
	return 0
}
