// Package testenv gives tests the external services they may use: a fresh
// PostgreSQL database per test and the URL of an external NATS server. When
// the variables that name them are unset the test is skipped, unless
// CUSTOS_TEST_REQUIRE_SERVICES=1, which turns that skip into a failure (CI
// sets it so that service-backed tests cannot silently not run).
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// The variables that name the services.
const (
	PostgresVar = "CUSTOS_TEST_POSTGRES_URL"
	NATSVar     = "CUSTOS_TEST_NATS_URL"
	RequireVar  = "CUSTOS_TEST_REQUIRE_SERVICES"
)

func skipOrFail(t testing.TB, variable string) {
	t.Helper()
	if os.Getenv(RequireVar) == "1" {
		t.Fatalf("%s is not set and %s=1: this service-backed test must run", variable, RequireVar)
	}
	t.Skipf("set %s to run this test against a real service", variable)
}

// PostgresURL creates an empty database on the server named by
// CUSTOS_TEST_POSTGRES_URL, returns its URL and drops it when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresVar)
	if base == "" {
		skipOrFail(t, PostgresVar)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresVar, err)
	}
	t.Cleanup(func() { admin.Close() })
	name := "custos_test_" + RandomName()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresVar, err)
	}
	u.Path = "/" + name
	return u.String()
}

// NATSURL returns CUSTOS_TEST_NATS_URL. Tests that use it must namespace
// their streams (a random bus prefix) so they do not meet each other.
func NATSURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(NATSVar)
	if u == "" {
		skipOrFail(t, NATSVar)
	}
	return u
}

// RandomName returns 12 random lower-case hex characters, usable in
// database, stream and subject names.
func RandomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(hex.EncodeToString(b[:]))
}
