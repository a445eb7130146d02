package auth

import (
	"context"
	"crypto/subtle"
	"sync"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// SourceStore finds a source by the hash of its write key and returns the
// hash of its secret. NotFound when there is none.
type SourceStore interface {
	ByWriteKeyHash(ctx context.Context, h []byte) (cdp.Source, []byte, error)
}

// Sources authenticates sources. Lookups are cached for a short time, so
// the hot ingestion path rarely reaches the database, and unknown keys are
// cached too, so guessing keys cannot load the database.
type Sources struct {
	store SourceStore
	ttl   time.Duration
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]sourceEntry
}

type sourceEntry struct {
	src     cdp.Source
	secret  []byte
	found   bool
	expires time.Time
}

const maxCachedSources = 10000

// NewSources returns an authenticator over store. A revoked or rotated key
// stops working within ttl (default 30s).
func NewSources(store SourceStore, ttl time.Duration) *Sources {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	return &Sources{store: store, ttl: ttl, now: time.Now, cache: map[string]sourceEntry{}}
}

var errBadWriteKey = cdp.Reason(cdp.Unauthenticated, "invalid_write_key", "unknown write key")

func (s *Sources) lookup(ctx context.Context, key string) (sourceEntry, error) {
	h := Hash(key)
	now := s.now()
	s.mu.Lock()
	e, ok := s.cache[string(h)]
	s.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e, nil
	}
	src, secret, err := s.store.ByWriteKeyHash(ctx, h)
	switch {
	case err == nil:
		e = sourceEntry{src: src, secret: secret, found: true, expires: now.Add(s.ttl)}
	case cdp.IsKind(err, cdp.NotFound):
		e = sourceEntry{expires: now.Add(s.ttl)}
	default:
		return sourceEntry{}, err
	}
	s.mu.Lock()
	if len(s.cache) >= maxCachedSources {
		clear(s.cache)
	}
	s.cache[string(h)] = e
	s.mu.Unlock()
	return e, nil
}

// SourceByWriteKey returns the source a write key belongs to; Unauthenticated
// if none.
func (s *Sources) SourceByWriteKey(ctx context.Context, key string) (cdp.Source, error) {
	if key == "" {
		return cdp.Source{}, errBadWriteKey
	}
	e, err := s.lookup(ctx, key)
	if err != nil {
		return cdp.Source{}, err
	}
	if !e.found {
		return cdp.Source{}, errBadWriteKey
	}
	return e.src, nil
}

// SourceByKeySecret checks a key:secret pair; Unauthenticated unless both
// match. The secret is compared in constant time.
func (s *Sources) SourceByKeySecret(ctx context.Context, key, secret string) (cdp.Source, error) {
	bad := cdp.Reason(cdp.Unauthenticated, "invalid_credentials", "unknown key or wrong secret")
	if key == "" || secret == "" {
		return cdp.Source{}, bad
	}
	e, err := s.lookup(ctx, key)
	if err != nil {
		return cdp.Source{}, err
	}
	if !e.found || subtle.ConstantTimeCompare(Hash(secret), e.secret) != 1 {
		return cdp.Source{}, bad
	}
	return e.src, nil
}
