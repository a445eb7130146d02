package sqlstore

import (
	"os"
	"sync"

	"github.com/custos-cdp/custos/internal/cdp"
)

// walSync makes SQLite commits durable in groups. The writer commits with
// synchronous=NORMAL, which writes a transaction to the write-ahead log
// without waiting for the disk, so the next transaction can start at once
// and readers see the commit at once. Whoever needs the commit on disk
// (every write path before it returns) then waits for one fsync of the log
// that began after its commit: one fsync serves every transaction that
// committed before it started, and it runs while the writer goes on.
//
// fsync on any descriptor of a file flushes all of that file's written
// data, so opening the log here and syncing it covers the frames the
// writer connection wrote. A checkpoint syncs the log before it copies
// frames and the database file before it truncates or restarts the log,
// so a commit whose frames left the log is on disk in the database file.
//
// A failed fsync is final: the kernel may have dropped the data it could
// not write and marked it clean, so no later fsync can vouch for it. Every
// write from then on fails (nothing more is acked) until Custos restarts
// and SQLite recovers from what is really on disk.
type walSync struct {
	path     string // the write-ahead log file, as SQLite names it
	mu       sync.Mutex
	syncFile func(*os.File) error // os.File.Sync; tests replace it
	cond     *sync.Cond
	running  bool
	started  uint64 // syncs begun
	done     uint64 // the newest sync finished (its number)
	err      error  // the first failure, kept
	count    uint64 // fsyncs done, for tests
}

// newWALSync syncs the write-ahead log of the database file dbFile, the
// name SQLite itself uses (symbolic links resolved), not the configured
// path.
func newWALSync(dbFile string) *walSync {
	s := &walSync{path: dbFile + "-wal", syncFile: (*os.File).Sync}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// wait returns once an fsync of the log that began after the call has
// finished. Concurrent callers share fsyncs. After any fsync failed it
// returns that failure.
func (s *walSync) wait() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	need := s.started + 1
	for s.done < need && s.err == nil {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		s.started++
		n, syncFile := s.started, s.syncFile
		s.mu.Unlock()
		err := s.fsync(syncFile)
		s.mu.Lock()
		s.running = false
		s.done = n
		if err != nil && s.err == nil {
			s.err = cdp.Wrap(cdp.Unavailable, "database_sync_failed", err,
				"the database could not be written to disk; restart Custos once the disk is healthy")
		}
		s.count++
		s.cond.Broadcast()
	}
	return s.err
}

func (s *walSync) fsync(syncFile func(*os.File) error) error {
	// A write just went to this file: if it is not there, this is not
	// the file SQLite writes, and succeeding would ack unsynced data.
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	return syncFile(f)
}

func (s *walSync) syncs() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}
