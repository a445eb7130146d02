package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/custos-cdp/custos/internal/sqlstore"
)

// keysCommand manages the key hierarchy. "custos keys rotate" adds a new
// master key version to every workspace and rewraps every data key under
// it, while servers keep running: data wrapped by older versions stays
// readable throughout, and running processes pick up the new version on
// their own.
func keysCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		fmt.Fprintln(stderr, "usage: custos keys rotate [--settle 35s] [serve flags for the database and master key]")
		return errUsage
	}
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	settle := fs.Duration("settle", 35*time.Second, "wait this long after adding the new version before rewrapping, so running servers use it for new keys")
	rest := splitFlag(args[1:], "settle")
	if err := fs.Parse(rest.own); err != nil {
		fmt.Fprintln(stderr, "custos keys rotate:", err)
		return errUsage
	}
	cfg, err := parseConfig("keys rotate", rest.others, os.Getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, stderr)
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx, log); err != nil {
		return err
	}
	v, err := openVault(cfg, db)
	if err != nil {
		return err
	}
	profiles := sqlstore.NewProfiles(db, v)
	workspaces, err := db.Workspaces().List(ctx)
	if err != nil {
		return err
	}
	for _, w := range workspaces {
		keys, err := v.Rotate(ctx, w.ID)
		if err != nil {
			return fmt.Errorf("rotate workspace %s: %w", w.ID, err)
		}
		fmt.Fprintf(stdout, "workspace %s: master key version %d added and made primary\n", w.ID, keys.MasterVersions())
	}
	if *settle > 0 {
		fmt.Fprintf(stdout, "waiting %s for running servers to pick up the new versions\n", *settle)
		select {
		case <-time.After(*settle):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, w := range workspaces {
		n, err := profiles.RewrapKeys(ctx, w.ID)
		if err != nil {
			return fmt.Errorf("rewrap data keys of workspace %s: %w", w.ID, err)
		}
		fmt.Fprintf(stdout, "workspace %s: %d data keys rewrapped\n", w.ID, n)
	}
	return nil
}

type splitArgs struct{ own, others []string }

// splitFlag separates --name / --name=value / --name value from the rest.
func splitFlag(args []string, name string) splitArgs {
	var out splitArgs
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "-" + name, "--" + name:
			out.own = append(out.own, a)
			if i+1 < len(args) {
				out.own = append(out.own, args[i+1])
				i++
			}
			continue
		}
		if len(a) > len(name)+2 && (a[:len(name)+2] == "-"+name+"=" || (len(a) > len(name)+3 && a[:len(name)+3] == "--"+name+"=")) {
			out.own = append(out.own, a)
			continue
		}
		out.others = append(out.others, a)
	}
	return out
}
