package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// newClient is NewClient that fails the test on an error.
func newClient(t *testing.T, cfg Config) *http.Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: got error %v, want none", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// transportOf returns the *http.Transport behind a client of NewClient.
func transportOf(t *testing.T, c *http.Client) *http.Transport {
	t.Helper()
	switch rt := c.Transport.(type) {
	case *http.Transport:
		return rt
	case httpsOnly:
		return rt.Transport
	}
	t.Fatalf("client transport: got %T, want *http.Transport or httpsOnly", c.Transport)
	return nil
}

// serverPool returns a pool trusting ts's certificate.
func serverPool(ts *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return pool
}

// get sends a GET to u; on success it reads and closes the body.
func get(c *http.Client, u string) (*http.Response, error) {
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// counter is a handler that answers 200 and counts its requests.
type counter struct{ n atomic.Int64 }

func (c *counter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.n.Add(1)
	_, _ = io.WriteString(w, "ok")
}

// startServer starts a plain http server. Servers here see refused
// handshakes on purpose, so their error log is dropped.
func startServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// startTLSServer starts an https server with cfg (nil: httptest's
// defaults) and httptest's self-signed certificate unless cfg has one.
func startTLSServer(t *testing.T, h http.Handler, cfg *tls.Config) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.TLS = cfg
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func TestNewClientConfig(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		wantTimeout time.Duration
		wantPerHost int
		wantHeader  time.Duration
	}{
		{"defaults", Config{}, 10 * time.Second, 8, 10 * time.Second},
		{"short timeout", Config{Timeout: 2 * time.Second, MaxIdleConnsPerHost: 3}, 2 * time.Second, 3, 10 * time.Second},
		{"long timeout lifts the header timeout", Config{Timeout: 30 * time.Second}, 30 * time.Second, 8, 30 * time.Second},
		{"negative idle conns", Config{MaxIdleConnsPerHost: -1}, 10 * time.Second, 8, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.cfg)
			tr := transportOf(t, c)
			if c.Timeout != tt.wantTimeout {
				t.Errorf("client timeout: got %v, want %v", c.Timeout, tt.wantTimeout)
			}
			if tr.MaxIdleConnsPerHost != tt.wantPerHost {
				t.Errorf("MaxIdleConnsPerHost: got %d, want %d", tr.MaxIdleConnsPerHost, tt.wantPerHost)
			}
			if tr.MaxIdleConns != 4*tt.wantPerHost {
				t.Errorf("MaxIdleConns: got %d, want %d", tr.MaxIdleConns, 4*tt.wantPerHost)
			}
			if tr.ResponseHeaderTimeout != tt.wantHeader {
				t.Errorf("ResponseHeaderTimeout: got %v, want %v", tr.ResponseHeaderTimeout, tt.wantHeader)
			}
			if tr.Proxy != nil {
				t.Error("Proxy: got a proxy function, want nil (environment proxies ignored)")
			}
			if tr.TLSHandshakeTimeout != 5*time.Second {
				t.Errorf("TLSHandshakeTimeout: got %v, want 5s", tr.TLSHandshakeTimeout)
			}
			if tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion: got %x, want %x", tr.TLSClientConfig.MinVersion, tls.VersionTLS12)
			}
			if tr.TLSClientConfig.ClientSessionCache == nil {
				t.Error("ClientSessionCache: got nil, want a cache")
			}
			if tr.TLSClientConfig.InsecureSkipVerify {
				t.Error("InsecureSkipVerify: got true, want false")
			}
		})
	}
}

func TestNewClientRejects(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantCode string
	}{
		{"negative timeout", Config{Timeout: -time.Second}, "invalid_timeout"},
		{"pin not base64", Config{PinSHA256: []string{"not base64!"}}, "invalid_pin"},
		{"empty pin", Config{PinSHA256: []string{""}}, "invalid_pin"},
		{"pin of 31 bytes", Config{PinSHA256: []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}}, "invalid_pin"},
		{"pin of 33 bytes", Config{PinSHA256: []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, "invalid_pin"},
		{"pin without padding", Config{PinSHA256: []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, "invalid_pin"},
		{"pin in URL-safe alphabet", Config{PinSHA256: []string{"-_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}, "invalid_pin"},
		{"pin with non-zero padding bits", Config{PinSHA256: []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="}}, "invalid_pin"},
		{"second pin bad", Config{PinSHA256: []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "x"}}, "invalid_pin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.cfg)
			if c != nil {
				t.Errorf("client: got %v, want nil", c)
			}
			var e *cdp.Error
			if !errors.As(err, &e) {
				t.Fatalf("error: got %v, want a *cdp.Error", err)
			}
			if e.Kind != cdp.Invalid || e.Code != tt.wantCode {
				t.Errorf("error: got %s/%s, want invalid/%s", e.Kind, e.Code, tt.wantCode)
			}
		})
	}

	t.Run("valid pins", func(t *testing.T) {
		_, err := NewClient(Config{PinSHA256: []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}})
		if err != nil {
			t.Errorf("got error %v, want none", err)
		}
	})
}

func TestRedirects(t *testing.T) {
	var plainHits, tlsHits counter
	plain := http.NewServeMux()
	plain.Handle("GET /target", &plainHits)
	plainTS := startServer(t, plain)
	secure := http.NewServeMux()
	secure.Handle("GET /target", &tlsHits)
	tlsTS := startTLSServer(t, secure, nil)

	redirect := func(mux *http.ServeMux, path, to string) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, to, http.StatusFound)
		})
	}
	redirect(secure, "/to-http", plainTS.URL+"/target")
	redirect(secure, "/to-https", tlsTS.URL+"/target")
	redirect(plain, "/to-http", plainTS.URL+"/target")
	redirect(plain, "/to-https", tlsTS.URL+"/target")
	_, port, _ := strings.Cut(strings.TrimPrefix(plainTS.URL, "http://"), ":")
	redirect(plain, "/to-metadata", "http://169.254.169.254/latest/meta-data/")
	redirect(plain, "/to-unspecified", "http://0.0.0.0:"+port+"/target")
	redirect(plain, "/to-mapped-metadata", "http://[::ffff:169.254.169.254]/latest/meta-data/")

	c := newClient(t, Config{AllowPrivateNetworks: true, RootCAs: serverPool(tlsTS)})
	tests := []struct {
		name          string
		url           string
		wantErr       error
		wantPlainHits int64
		wantTLSHits   int64
	}{
		{"https to http refused", tlsTS.URL + "/to-http", &cdp.Error{Kind: cdp.Invalid, Code: "insecure_redirect"}, 0, 0},
		{"https to https followed", tlsTS.URL + "/to-https", nil, 0, 1},
		{"http to http followed", plainTS.URL + "/to-http", nil, 1, 0},
		{"http to https followed", plainTS.URL + "/to-https", nil, 0, 1},
		{"to the metadata service refused", plainTS.URL + "/to-metadata", ErrBlockedAddress, 0, 0},
		{"to 0.0.0.0 refused", plainTS.URL + "/to-unspecified", ErrBlockedAddress, 0, 0},
		{"to mapped metadata refused", plainTS.URL + "/to-mapped-metadata", ErrBlockedAddress, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plainHits.n.Store(0)
			tlsHits.n.Store(0)
			resp, err := get(c, tt.url)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr == nil && resp.StatusCode != http.StatusOK:
				t.Fatalf("status: got %d, want 200", resp.StatusCode)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("error: got %v, want one matching %v", err, tt.wantErr)
			}
			if got := plainHits.n.Load(); got != tt.wantPlainHits {
				t.Errorf("http target requests: got %d, want %d", got, tt.wantPlainHits)
			}
			if got := tlsHits.n.Load(); got != tt.wantTLSHits {
				t.Errorf("https target requests: got %d, want %d", got, tt.wantTLSHits)
			}
		})
	}
}

func TestRedirectLimit(t *testing.T) {
	var requests atomic.Int64
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		n, err := strconv.Atoi(r.URL.Query().Get("left"))
		if err != nil || n == 0 {
			_, _ = io.WriteString(w, "done")
			return
		}
		http.Redirect(w, r, "/?left="+strconv.Itoa(n-1), http.StatusFound)
	}))
	c := newClient(t, Config{AllowPrivateNetworks: true})

	tests := []struct {
		name         string
		redirects    int
		wantErr      bool
		wantRequests int64
	}{
		{"none", 0, false, 1},
		{"three", 3, false, 4},
		{"four", 4, true, 4},
		{"ten", 10, true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests.Store(0)
			resp, err := get(c, ts.URL+"/?left="+strconv.Itoa(tt.redirects))
			if tt.wantErr {
				if !errors.Is(err, &cdp.Error{Kind: cdp.Invalid, Code: "too_many_redirects"}) {
					t.Errorf("error: got %v, want too_many_redirects", err)
				}
			} else if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("got %v, %v, want status 200 and no error", resp, err)
			}
			if got := requests.Load(); got != tt.wantRequests {
				t.Errorf("requests: got %d, want %d", got, tt.wantRequests)
			}
		})
	}
}

func TestTLSVersion(t *testing.T) {
	tests := []struct {
		name    string
		version uint16
		wantErr bool
	}{
		{"TLS 1.0", tls.VersionTLS10, true},
		{"TLS 1.1", tls.VersionTLS11, true},
		{"TLS 1.2", tls.VersionTLS12, false},
		{"TLS 1.3", tls.VersionTLS13, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits counter
			ts := startTLSServer(t, &hits, &tls.Config{MinVersion: tt.version, MaxVersion: tt.version})
			pool := serverPool(ts)

			// A client that accepts old versions shows the server really
			// speaks this one.
			old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10}}}
			t.Cleanup(old.CloseIdleConnections)
			resp, err := get(old, ts.URL)
			if err != nil {
				t.Fatalf("permissive client: got error %v, want none", err)
			}
			if resp.TLS.Version != tt.version {
				t.Fatalf("permissive client: got version %x, want %x", resp.TLS.Version, tt.version)
			}

			hits.n.Store(0)
			resp, err = get(newClient(t, Config{AllowPrivateNetworks: true, RootCAs: pool}), ts.URL)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got version %x accepted, want an error", resp.TLS.Version)
				}
				if !strings.Contains(err.Error(), "protocol version") {
					t.Errorf("error: got %v, want a protocol version alert", err)
				}
				if got := hits.n.Load(); got != 0 {
					t.Errorf("requests served: got %d, want 0", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if resp.TLS.Version != tt.version {
				t.Errorf("version: got %x, want %x", resp.TLS.Version, tt.version)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release) })

	c := newClient(t, Config{AllowPrivateNetworks: true, Timeout: 50 * time.Millisecond})
	_, err := get(c, ts.URL)
	var ue *url.Error
	if !errors.As(err, &ue) || !ue.Timeout() {
		t.Errorf("got %v, want a timeout", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want a timeout rather than a cancellation", err)
	}
}
