package opendsr

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// The signature headers. OpenDSR answers and callbacks carry the base64
// RSA signature of their body and the processor's domain; the OpenGDPR (v1)
// names are sent too and accepted.
const (
	HeaderSignature   = "X-OpenDSR-Signature"
	HeaderDomain      = "X-OpenDSR-Processor-Domain"
	HeaderSignatureV1 = "X-OpenGDPR-Signature"
	HeaderDomainV1    = "X-OpenGDPR-Processor-Domain"
)

// Key sizes: generated keys have GeneratedKeyBits, loaded ones at least
// MinKeyBits.
const (
	GeneratedKeyBits = 3072
	MinKeyBits       = 2048
)

// certificateValidity is how long a generated certificate is valid.
const certificateValidity = 10 // years

// Signer signs OpenDSR bodies with a processor's RSA key. It is safe for
// concurrent use.
type Signer struct {
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
	domain  string
}

// NewSigner returns a signer for key, whose certificate (PEM) is published,
// naming domain in the domain headers. Receivers expect the certificate to
// be issued to that domain; NewSigner does not insist, so that a deployment
// whose address changed keeps starting with its stored key (CertifiesDomain
// tells). Errors (Invalid): "invalid_domain" for a domain that is not a host
// name or IP address, "invalid_key" for a key that is nil, broken or shorter
// than MinKeyBits, "invalid_certificate" for a certificate that does not
// parse, "key_mismatch" when the certificate is not the key's.
func NewSigner(key *rsa.PrivateKey, certPEM []byte, domain string) (*Signer, error) {
	if !validDomain(domain) {
		return nil, cdp.Reason(cdp.Invalid, "invalid_domain", "the processor domain must be a host name or IP address")
	}
	if key == nil || key.Validate() != nil || key.N.BitLen() < MinKeyBits {
		return nil, cdp.Reason(cdp.Invalid, "invalid_key", "the signing key must be a valid RSA key of at least 2048 bits")
	}
	cert, err := parseCertificate(certPEM)
	if err != nil {
		return nil, cdp.Wrap(cdp.Invalid, "invalid_certificate", err, "the signing certificate does not parse")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, cdp.Reason(cdp.Invalid, "key_mismatch", "the signing certificate is not the signing key's")
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return &Signer{key: key, cert: cert, certPEM: block, domain: domain}, nil
}

// GenerateSigner makes a GeneratedKeyBits RSA key and a self-signed
// certificate for domain, valid from now for ten years, and returns the
// signer with the key (PKCS#8) and certificate as PEM, for storage. The key
// PEM is a secret.
func GenerateSigner(domain string, now time.Time) (s *Signer, keyPEM, certPEM []byte, err error) {
	if !validDomain(domain) {
		return nil, nil, nil, cdp.Reason(cdp.Invalid, "invalid_domain", "the processor domain must be a host name or IP address")
	}
	key, err := rsa.GenerateKey(rand.Reader, GeneratedKeyBits)
	if err != nil {
		return nil, nil, nil, cdp.Wrap(cdp.Internal, "internal", err, "generating the signing key failed")
	}
	certPEM, err = selfSigned(key, domain, now)
	if err != nil {
		return nil, nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, cdp.Wrap(cdp.Internal, "internal", err, "encoding the signing key failed")
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	s, err = NewSigner(key, certPEM, domain)
	if err != nil {
		return nil, nil, nil, err
	}
	return s, keyPEM, certPEM, nil
}

// selfSigned returns a PEM certificate for key issued by itself to domain.
func selfSigned(key *rsa.PrivateKey, domain string, now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, cdp.Wrap(cdp.Internal, "internal", err, "generating a certificate serial failed")
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domain},
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.AddDate(certificateValidity, 0, 0).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(domain); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{domain}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, cdp.Wrap(cdp.Internal, "internal", err, "creating the signing certificate failed")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// LoadSigner returns the signer of a PEM key (PKCS#1 "RSA PRIVATE KEY" or
// PKCS#8 "PRIVATE KEY") and its PEM certificate. Errors as NewSigner; a key
// that does not parse is "invalid_key". Error messages never hold key
// material.
func LoadSigner(keyPEM, certPEM []byte, domain string) (*Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, cdp.Reason(cdp.Invalid, "invalid_key", "the signing key is not PEM")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, cdp.Reason(cdp.Invalid, "invalid_key", "the PKCS#1 signing key does not parse")
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, cdp.Reason(cdp.Invalid, "invalid_key", "the PKCS#8 signing key does not parse")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, cdp.Reason(cdp.Invalid, "invalid_key", "the signing key is not an RSA key")
		}
		key = rk
	default:
		return nil, cdp.Reason(cdp.Invalid, "invalid_key", "the signing key PEM must be an RSA PRIVATE KEY or PRIVATE KEY block")
	}
	return NewSigner(key, certPEM, domain)
}

// Sign returns the base64 (standard encoding) RSA PKCS#1 v1.5 signature of
// the SHA-256 of body.
func (s *Signer) Sign(body []byte) string {
	sum := sha256.Sum256(body)
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		// NewSigner validated the key and its size: signing cannot fail.
		panic("opendsr: signing with a validated key failed: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// SetHeaders sets the signature of body and the processor domain on h,
// under both the OpenDSR and the OpenGDPR names.
func (s *Signer) SetHeaders(h http.Header, body []byte) {
	sig := s.Sign(body)
	h.Set(HeaderSignature, sig)
	h.Set(HeaderSignatureV1, sig)
	h.Set(HeaderDomain, s.domain)
	h.Set(HeaderDomainV1, s.domain)
}

// CertificatePEM returns the certificate to publish, as PEM.
func (s *Signer) CertificatePEM() []byte { return bytes.Clone(s.certPEM) }

// Domain returns the processor domain the signer names.
func (s *Signer) Domain() string { return s.domain }

// CertifiesDomain reports whether the certificate is issued to the
// signer's domain, as receivers that check certificates expect; worth a
// warning at start-up when it is not.
func (s *Signer) CertifiesDomain() bool { return s.cert.VerifyHostname(s.domain) == nil }

// Verify checks that body was signed by the key of the certificate certPEM,
// with the signature in h: X-OpenDSR-Signature, or X-OpenGDPR-Signature when
// the former is absent (names matched without regard to case). Call it on the raw bytes received, before parsing
// them. Which certificate belongs to which processor, and whether it is
// still valid, is the caller's decision: Verify checks the signature only.
// Every failure is Unauthenticated "invalid_signature".
func Verify(certPEM []byte, h http.Header, body []byte) error {
	cert, err := parseCertificate(certPEM)
	if err != nil {
		return cdp.Wrap(cdp.Unauthenticated, "invalid_signature", err, "the signing certificate does not parse")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return cdp.Reason(cdp.Unauthenticated, "invalid_signature", "the signing certificate does not hold an RSA key")
	}
	encoded := headerValue(h, HeaderSignature)
	if encoded == "" {
		encoded = headerValue(h, HeaderSignatureV1)
	}
	if encoded == "" {
		return cdp.Reason(cdp.Unauthenticated, "invalid_signature", "the body is not signed")
	}
	sig, ok := decodeSignature(encoded)
	if !ok {
		return cdp.Reason(cdp.Unauthenticated, "invalid_signature", "the signature is not base64")
	}
	sum := sha256.Sum256(body)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return cdp.Reason(cdp.Unauthenticated, "invalid_signature", "the signature does not match the body")
	}
	return nil
}

// headerValue is h.Get(name), also for a header map built by hand with
// names that are not in canonical form.
func headerValue(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// decodeSignature reads a base64 signature, ignoring the line breaks and
// spaces some processors wrap it in, with or without padding.
func decodeSignature(s string) ([]byte, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	if sig, err := base64.StdEncoding.DecodeString(s); err == nil {
		return sig, true
	}
	sig, err := base64.RawStdEncoding.DecodeString(s)
	return sig, err == nil
}

// parseCertificate returns the first certificate in PEM data.
func parseCertificate(certPEM []byte) (*x509.Certificate, error) {
	rest := certPEM
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errNoCertificate
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

var errNoCertificate = errors.New("no PEM CERTIFICATE block")

// validDomain reports whether d can be a processor domain: an IP address or
// a host name of letters, digits, hyphens and dots, at most 253 bytes.
func validDomain(d string) bool {
	if net.ParseIP(d) != nil {
		return true
	}
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasPrefix(d, "-") || strings.Contains(d, "..") {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
