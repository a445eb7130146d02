package loadgen

import (
	"context"
	"testing"
	"time"
)

func TestZZProf(t *testing.T) {
	rep, err := Run(context.Background(), Config{URL: "http://127.0.0.1:18099", WriteKey: "k", Concurrency: 64, Duration: 3 * time.Second, Warmup: -1})
	t.Log(rep.String(), err)
}
