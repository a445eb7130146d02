package outbound

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Config says what a client may reach and how it checks the server.
type Config struct {
	// AllowPrivateNetworks lifts the guard for loopback, private,
	// link-local and carrier-grade NAT addresses (tests, local trials).
	// Cloud metadata services stay blocked regardless.
	AllowPrivateNetworks bool
	// Timeout bounds a whole request, redirects and reading the body
	// included; zero means 10s.
	Timeout time.Duration
	// PinSHA256 are base64 (standard encoding) SHA-256 hashes of
	// SubjectPublicKeyInfos; when set, a connection is accepted only if its
	// verified chain holds one of them, and plain http is refused.
	PinSHA256 []string
	// RootCAs verify servers; nil means the system roots.
	RootCAs *x509.CertPool
	// MaxIdleConnsPerHost bounds the idle connections kept per host; zero
	// or less means 8.
	MaxIdleConnsPerHost int
}

const (
	defaultTimeout             = 10 * time.Second
	defaultMaxIdleConnsPerHost = 8
	tlsHandshakeTimeout        = 5 * time.Second
	responseHeaderTimeout      = 10 * time.Second
	idleConnTimeout            = 90 * time.Second
	maxResponseHeaderBytes     = 1 << 20
	sessionCacheSize           = 64
	maxRedirects               = 3
)

var (
	errTooManyRedirects = cdp.Reason(cdp.Invalid, "too_many_redirects",
		fmt.Sprintf("the server redirected more than %d times", maxRedirects))
	errInsecureRedirect = cdp.Reason(cdp.Invalid, "insecure_redirect",
		"the server redirected from https to plain http")
)

// NewClient returns a client that enforces cfg on every connection it
// makes, redirects included:
//
//   - it connects only to addresses IsBlocked allows, checked on the
//     address actually dialled, after name resolution;
//   - environment proxies are ignored, so the guard sees the real
//     destination;
//   - https uses TLS 1.2 or later, verified against cfg.RootCAs (or the
//     system roots), and, with pins, the verified chain must hold a pinned
//     key on every handshake, resumed sessions included;
//   - it follows at most 3 redirects and never one from https to http;
//   - dialling and the TLS handshake each have 5s, response headers 10s
//     (or the whole Timeout if longer), the whole request cfg.Timeout.
//
// A refused address is an error wrapping ErrBlockedAddress; a pin that no
// certificate matches, ErrPinMismatch; a refused redirect, an Invalid
// *cdp.Error with code "too_many_redirects" or "insecure_redirect". A pin
// that is not the base64 of 32 bytes, or a negative timeout, is an Invalid
// *cdp.Error ("invalid_pin", "invalid_timeout") from NewClient itself.
//
// A client has its own TLS session cache, so repeated connections to a
// destination resume their sessions.
func NewClient(cfg Config) (*http.Client, error) {
	pins, err := parsePins(cfg.PinSHA256)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, cdp.Reason(cdp.Invalid, "invalid_timeout", "the request timeout must not be negative")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	perHost := cfg.MaxIdleConnsPerHost
	if perHost <= 0 {
		perHost = defaultMaxIdleConnsPerHost
	}

	tlsConfig := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            cfg.RootCAs,
		ClientSessionCache: tls.NewLRUClientSessionCache(sessionCacheSize),
	}
	if len(pins) > 0 {
		tlsConfig.VerifyConnection = pins.verifyConnection
	}
	dial := Dialer(cfg)
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dial,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ResponseHeaderTimeout:  max(responseHeaderTimeout, timeout),
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        idleConnTimeout,
		MaxIdleConnsPerHost:    perHost,
		MaxIdleConns:           4 * perHost,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		ForceAttemptHTTP2:      true,
	}
	var rt http.RoundTripper = transport
	if len(pins) > 0 {
		rt = httpsOnly{transport}
	}
	return &http.Client{
		Transport:     rt,
		Timeout:       timeout,
		CheckRedirect: checkRedirect,
	}, nil
}

// checkRedirect allows at most maxRedirects redirects and none from https
// to http. The target's address is checked when it is dialled, like any
// other connection.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return errTooManyRedirects
	}
	if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errInsecureRedirect
	}
	return nil
}

// httpsOnly is the transport of a pinned client: a pin cannot be checked
// on plain http, so such a request is refused rather than sent unpinned.
// The embedded transport keeps CloseIdleConnections working.
type httpsOnly struct {
	*http.Transport
}

func (t httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("pins are set and the URL is not https: %w", ErrPinMismatch)
	}
	return t.Transport.RoundTrip(req)
}

var _ http.RoundTripper = httpsOnly{}
