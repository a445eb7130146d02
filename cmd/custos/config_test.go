package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseConfigBareBoolAndEnv(t *testing.T) {
	env := map[string]string{"CUSTOS_FORWARD_MAX_RETRY_DELAY": "7s"}
	c, err := parseConfig("serve", []string{"--allow-private-networks", "--addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.AllowPrivate || c.Addr != "127.0.0.1:0" || c.MaxRetryDelay != 7*time.Second {
		t.Fatalf("got allow=%v addr=%q delay=%v", c.AllowPrivate, c.Addr, c.MaxRetryDelay)
	}
	c, err = parseConfig("serve", []string{"--allow-private-networks=false"}, func(k string) string { return map[string]string{"CUSTOS_ALLOW_PRIVATE_NETWORKS": "true"}[k] }, io.Discard)
	if err != nil || c.AllowPrivate {
		t.Fatalf("an explicit flag must win over the environment: %v %v", c.AllowPrivate, err)
	}
	if _, err := parseConfig("serve", []string{"--forward-max-retry-delay", "soon"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("a bad duration must be refused")
	}
}

// TestReadmeConfigurationTable keeps the README's configuration table in
// step with the options: every flag and its variable has a row.
func TestReadmeConfigurationTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c config
	for _, o := range c.options() {
		row := "| `--" + o.flag + "` | `" + o.env + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no configuration row %q", row)
		}
	}
}
