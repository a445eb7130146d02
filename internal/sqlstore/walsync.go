package sqlstore

import (
	"errors"
	"io/fs"
	"os"
	"sync"
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
type walSync struct {
	path     string // the write-ahead log file
	mu       sync.Mutex
	syncFile func(*os.File) error // os.File.Sync; tests replace it
	cond     *sync.Cond
	running  bool
	started  uint64 // syncs begun
	done     uint64 // the newest sync finished (its number)
	err      error  // its error
	count    uint64 // fsyncs done, for tests
}

func newWALSync(dbPath string) *walSync {
	s := &walSync{path: dbPath + "-wal", syncFile: (*os.File).Sync}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// wait returns once an fsync of the log that began after the call has
// finished, with its error. Concurrent callers share fsyncs.
func (s *walSync) wait() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	need := s.started + 1
	for s.done < need {
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
		s.done, s.err = n, err
		s.count++
		s.cond.Broadcast()
	}
	return s.err
}

func (s *walSync) fsync(syncFile func(*os.File) error) error {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		// No log: the last checkpoint folded it into the (synced)
		// database file and removed it.
		return nil
	}
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
