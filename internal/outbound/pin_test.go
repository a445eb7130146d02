package outbound

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// wrongPin is a valid pin that matches no key.
var wrongPin = base64.StdEncoding.EncodeToString(make([]byte, 32))

// pki is a root CA, an intermediate CA it signed, a leaf for 127.0.0.1
// the intermediate signed, and an unrelated self-signed certificate.
type pki struct {
	root, intermediate, leaf, stranger *x509.Certificate
	leafKey                            *ecdsa.PrivateKey
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	issue := func(tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) *x509.Certificate {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	ca := func(name string) *x509.Certificate {
		return &x509.Certificate{
			Subject:               pkix.Name{CommonName: name},
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign,
		}
	}

	rootKey, interKey, leafKey, strangerKey := newKey(), newKey(), newKey(), newKey()
	p := &pki{leafKey: leafKey}
	p.root = issue(ca("Test Root"), rootKey, nil, nil)
	p.intermediate = issue(ca("Test Intermediate"), interKey, p.root, rootKey)
	p.leaf = issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, leafKey, p.intermediate, interKey)
	p.stranger = issue(ca("Stranger"), strangerKey, nil, nil)
	return p
}

func (p *pki) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.root)
	return pool
}

// serverConfig presents the leaf and then extra certificates.
func (p *pki) serverConfig(extra ...*x509.Certificate) *tls.Config {
	chain := [][]byte{p.leaf.Raw}
	for _, c := range extra {
		chain = append(chain, c.Raw)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: p.leafKey}}}
}

func TestSPKIHash(t *testing.T) {
	p := newPKI(t)
	sum := sha256.Sum256(p.leaf.RawSubjectPublicKeyInfo)
	want := base64.StdEncoding.EncodeToString(sum[:])
	if got := SPKIHash(p.leaf); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if SPKIHash(p.leaf) == SPKIHash(p.intermediate) {
		t.Error("leaf and intermediate: got the same hash, want different ones")
	}
}

func TestPinSelfSigned(t *testing.T) {
	var hits counter
	ts := startTLSServer(t, &hits, nil)
	right := SPKIHash(ts.Certificate())

	tests := []struct {
		name     string
		pins     []string
		wantPass bool
	}{
		{"leaf pin", []string{right}, true},
		{"wrong pin", []string{wrongPin}, false},
		{"wrong and leaf pins", []string{wrongPin, right}, true},
		{"no pins", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.n.Store(0)
			c := newClient(t, Config{AllowPrivateNetworks: true, RootCAs: serverPool(ts), PinSHA256: tt.pins})
			resp, err := get(c, ts.URL)
			if tt.wantPass {
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("got %v, %v, want status 200", resp, err)
				}
				return
			}
			if !errors.Is(err, ErrPinMismatch) {
				t.Fatalf("error: got %v, want one wrapping ErrPinMismatch", err)
			}
			if got := hits.n.Load(); got != 0 {
				t.Errorf("requests served: got %d, want 0", got)
			}
		})
	}
}

func TestPinChain(t *testing.T) {
	p := newPKI(t)
	var hits counter
	ts := startTLSServer(t, &hits, p.serverConfig(p.intermediate, p.stranger))

	tests := []struct {
		name     string
		pin      *x509.Certificate
		wantPass bool
	}{
		{"leaf", p.leaf, true},
		{"intermediate", p.intermediate, true},
		{"root, which the server does not send", p.root, true},
		{"certificate sent outside the verified chain", p.stranger, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.n.Store(0)
			c := newClient(t, Config{AllowPrivateNetworks: true, RootCAs: p.pool(), PinSHA256: []string{SPKIHash(tt.pin)}})
			resp, err := get(c, ts.URL)
			if tt.wantPass {
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("got %v, %v, want status 200", resp, err)
				}
				return
			}
			if !errors.Is(err, ErrPinMismatch) {
				t.Fatalf("error: got %v, want one wrapping ErrPinMismatch", err)
			}
			if got := hits.n.Load(); got != 0 {
				t.Errorf("requests served: got %d, want 0", got)
			}
		})
	}
}

// A pin adds to chain verification: a pinned key behind an untrusted root
// is still refused.
func TestPinKeepsChainVerification(t *testing.T) {
	p := newPKI(t)
	ts := startTLSServer(t, &counter{}, p.serverConfig(p.intermediate))
	c := newClient(t, Config{AllowPrivateNetworks: true, RootCAs: x509.NewCertPool(), PinSHA256: []string{SPKIHash(p.leaf)}})
	_, err := get(c, ts.URL)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("error: got %v, want x509.UnknownAuthorityError", err)
	}
	if errors.Is(err, ErrPinMismatch) {
		t.Errorf("error: got %v, want a verification error rather than a pin mismatch", err)
	}
}

// resumptions records, for each handshake of a client, whether the session
// was resumed, by wrapping its VerifyConnection (which runs on every
// handshake) without depending on the pin check being done there.
type resumptions struct {
	mu      sync.Mutex
	resumed []bool
}

func (r *resumptions) wrap(t *testing.T, c *http.Client) {
	t.Helper()
	cfg := transportOf(t, c).TLSClientConfig
	verify := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		r.mu.Lock()
		r.resumed = append(r.resumed, cs.DidResume)
		r.mu.Unlock()
		if verify == nil {
			return nil
		}
		return verify(cs)
	}
}

func (r *resumptions) get() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.resumed...)
}

func TestPinOnResumedSessions(t *testing.T) {
	tests := []struct {
		name    string
		version uint16
	}{
		{"TLS 1.2", tls.VersionTLS12},
		{"TLS 1.3", tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits counter
			ts := startTLSServer(t, &hits, &tls.Config{MinVersion: tt.version, MaxVersion: tt.version})
			cfg := Config{AllowPrivateNetworks: true, RootCAs: serverPool(ts), PinSHA256: []string{SPKIHash(ts.Certificate())}}
			good := newClient(t, cfg)
			var goodSeen resumptions
			goodSeen.wrap(t, good)

			resp, err := get(good, ts.URL)
			if err != nil {
				t.Fatalf("first request: got error %v, want none", err)
			}
			if resp.TLS.DidResume {
				t.Fatal("first request: got a resumed session, want a full handshake")
			}
			good.CloseIdleConnections()
			resp, err = get(good, ts.URL)
			if err != nil {
				t.Fatalf("second request: got error %v, want none", err)
			}
			if !resp.TLS.DidResume {
				t.Fatal("second request: got a full handshake, want a resumed session")
			}
			if got := goodSeen.get(); len(got) != 2 || got[0] || !got[1] {
				t.Fatalf("pin checks (resumed?): got %v, want [false true]", got)
			}

			// A client with a wrong pin that holds the same session would
			// resume it; the pin must still be checked and fail.
			cfg.PinSHA256 = []string{wrongPin}
			bad := newClient(t, cfg)
			transportOf(t, bad).TLSClientConfig.ClientSessionCache = transportOf(t, good).TLSClientConfig.ClientSessionCache
			var badSeen resumptions
			badSeen.wrap(t, bad)
			hits.n.Store(0)
			_, err = get(bad, ts.URL)
			if !errors.Is(err, ErrPinMismatch) {
				t.Fatalf("wrong pin on a resumed session: got %v, want an error wrapping ErrPinMismatch", err)
			}
			if got := badSeen.get(); len(got) != 1 || !got[0] {
				t.Fatalf("pin checks (resumed?): got %v, want [true]", got)
			}
			if got := hits.n.Load(); got != 0 {
				t.Errorf("requests served: got %d, want 0", got)
			}
		})
	}
}

func TestPinnedClientRefusesPlainHTTP(t *testing.T) {
	var hits counter
	ts := startServer(t, &hits)
	c := newClient(t, Config{AllowPrivateNetworks: true, PinSHA256: []string{wrongPin}})
	_, err := get(c, ts.URL)
	if !errors.Is(err, ErrPinMismatch) {
		t.Errorf("error: got %v, want one wrapping ErrPinMismatch", err)
	}
	if got := hits.n.Load(); got != 0 {
		t.Errorf("requests served: got %d, want 0", got)
	}
}
