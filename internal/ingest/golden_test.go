package ingest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden pins the envelope the decoders build from representative
// payloads. Run with -update after an intended change and review the diff.
func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		decode func([]byte) ([]cdp.Event, []Rejection, error)
	}{
		{"segment_batch", func(b []byte) ([]cdp.Event, []Rejection, error) {
			req, err := DecodeSegment(b, "", Limits{}, receivedAt)
			return req.Events, req.Rejected, err
		}},
		{"mparticle_batch", func(b []byte) ([]cdp.Event, []Rejection, error) {
			req, err := DecodeMParticle(b, false, Limits{}, receivedAt)
			return req.Events, req.Rejected, err
		}},
		{"mparticle_bulk", func(b []byte) ([]cdp.Event, []Rejection, error) {
			req, err := DecodeMParticle(b, true, Limits{}, receivedAt)
			return req.Events, req.Rejected, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", tt.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			events, rejected, err := tt.decode(in)
			if err != nil || len(rejected) != 0 {
				t.Fatalf("got error %v and rejections %v, want neither", err, rejected)
			}
			got, err := json.MarshalIndent(events, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decoded %s differs from %s (run go test -update if intended):\ngot:\n%s", tt.name, path, got)
			}
		})
	}
}
