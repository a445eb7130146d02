package raw

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/forward"
)

// dirSender writes each batch to a new file in a directory.
type dirSender struct {
	dir    string
	prefix string // "custos-<destination id>-"
	now    func() time.Time
}

// fileTime is the UTC time in a file name; it sorts in time order.
const fileTime = "20060102T150405.000000000Z"

func newDirSender(u *url.URL, id cdp.DestinationID, now func() time.Time) (*dirSender, error) {
	dir, err := dirPath(u)
	if err != nil {
		return nil, err
	}
	if !fileSafe.MatchString(string(id)) {
		return nil, cdp.Reason(cdp.Invalid, "invalid_destination", "the destination id cannot be part of a file name")
	}
	return &dirSender{dir: dir, prefix: "custos-" + string(id) + "-", now: now}, nil
}

// write puts body in a new file atomically: under a temporary name, synced,
// renamed, and the directory synced so the rename survives a crash.
// Failures are retryable: a full disk or a wrong permission can be fixed
// without changing the batch.
func (s *dirSender) write(body []byte) (err error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fileError("creating the directory", err)
	}
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return fileError("naming the file", err)
	}
	name := s.prefix + s.now().UTC().Format(fileTime) + "-" + hex.EncodeToString(suffix[:]) + ".jsonl"
	tmp, err := os.CreateTemp(s.dir, ".custos-*.tmp") // 0600
	if err != nil {
		return fileError("creating the file", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	_, werr := tmp.Write(body)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fileError("writing the file", werr)
	}
	final := filepath.Join(s.dir, name)
	if _, err := os.Lstat(final); !errors.Is(err, os.ErrNotExist) {
		return fileError("naming the file", errors.New("a file of that name exists"))
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fileError("renaming the file", err)
	}
	if err := syncDir(s.dir); err != nil {
		// The file is complete under its final name; only its durability
		// across a crash is in doubt. Sending the batch again would write
		// a second file, which consumers dedupe.
		return fileError("syncing the directory", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	if cerr := d.Close(); serr == nil {
		serr = cerr
	}
	return serr
}

func fileError(op string, err error) error {
	return forward.Retry(op+" failed", err)
}

// fileSafe matches destination ids that can be part of a file name.
var fileSafe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// dirPath returns the absolute directory of a file:/// URL.
func dirPath(u *url.URL) (string, error) {
	if (u.Host != "" && u.Host != "localhost") || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", invalidEndpoint()
	}
	p := filepath.FromSlash(u.Path)
	if !filepath.IsAbs(p) {
		return "", invalidEndpoint()
	}
	return filepath.Clean(p), nil
}
