package main

import (
	"context"
	"io"
	"os"
)

// migrateCommand applies the database migrations and exits. serve also
// migrates on start; this is for deployments that migrate as a separate
// step before rolling out new processes.
func migrateCommand(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseConfig("migrate", args, os.Getenv, stderr)
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
	log.Info("database is up to date", "database", db.Dialect())
	return nil
}
