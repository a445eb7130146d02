package sqlstore

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWALSyncCoversEveryWaiter: a wait returns only after an fsync that
// began after the wait was called (an fsync already running may have
// missed the caller's commit), and waiters arriving together share
// fsyncs.
func TestWALSyncCoversEveryWaiter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	if err := os.WriteFile(path+"-wal", []byte("log"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newWALSync(path)
	var (
		clock   atomic.Int64 // ticks; a wait's call and an fsync's start each take one
		mu      sync.Mutex
		started []int64 // tick at which each fsync began, by number
	)
	s.syncFile = func(*os.File) error {
		mu.Lock()
		started = append(started, clock.Add(1))
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		return nil
	}
	const waiters = 64
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			called := clock.Add(1)
			if err := s.wait(); err != nil {
				t.Error(err)
				return
			}
			// Some fsync that finished before now began after the call.
			mu.Lock()
			defer mu.Unlock()
			ok := false
			for _, st := range started[:min(len(started), int(s.syncs()))] {
				ok = ok || st > called
			}
			if !ok {
				t.Errorf("wait called at tick %d returned without an fsync begun after it (fsyncs began at %v)", called, started)
			}
		})
	}
	wg.Wait()
	if n := s.syncs(); n >= waiters || n == 0 {
		t.Errorf("%d waiters took %d fsyncs; want them shared", waiters, n)
	} else {
		t.Logf("%d waiters, %d fsyncs", waiters, n)
	}
}

// TestWALSyncMissingLog: a missing log means the fsync is looking at the
// wrong file, which must fail rather than vouch for unsynced data.
func TestWALSyncMissingLog(t *testing.T) {
	s := newWALSync(filepath.Join(t.TempDir(), "none.db"))
	if err := s.wait(); err == nil {
		t.Fatal("wait succeeded without a log file to sync")
	}
}
