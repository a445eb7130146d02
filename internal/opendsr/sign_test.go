package opendsr

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

const testDomain = "custos.example"

type generated struct {
	signer          *Signer
	keyPEM, certPEM []byte
}

// generatedSigner is made once: a 3072-bit key takes a while.
var generatedSigner = sync.OnceValues(func() (generated, error) {
	s, k, c, err := GenerateSigner(testDomain, testNow)
	return generated{s, k, c}, err
})

// otherKey is a second key, for the wrong-certificate cases.
var otherKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, MinKeyBits) })

func testSigner(t *testing.T) generated {
	t.Helper()
	g, err := generatedSigner()
	if err != nil {
		t.Fatalf("GenerateSigner: %v", err)
	}
	return g
}

func testOtherKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := otherKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := selfSigned(k, "other.example", testNow)
	if err != nil {
		t.Fatal(err)
	}
	return k, cert
}

func TestGenerateSigner(t *testing.T) {
	g := testSigner(t)
	block, _ := pem.Decode(g.certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("got certificate PEM %q, want a CERTIFICATE block", g.certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := cert.PublicKey.(*rsa.PublicKey).N.BitLen(); got != 3072 {
		t.Errorf("got a %d-bit key, want 3072", got)
	}
	if err := cert.VerifyHostname(testDomain); err != nil {
		t.Errorf("got %v, want the certificate issued to %s", err, testDomain)
	}
	if want := testNow.AddDate(10, 0, 0); !cert.NotAfter.Equal(want) {
		t.Errorf("got not after %v, want %v", cert.NotAfter, want)
	}
	if cert.NotBefore.After(testNow) {
		t.Errorf("got not before %v, want it valid at %v", cert.NotBefore, testNow)
	}
	if !bytes.Equal(g.signer.CertificatePEM(), g.certPEM) {
		t.Error("got a CertificatePEM different from the generated one, want the same")
	}
	if g.signer.Domain() != testDomain || !g.signer.CertifiesDomain() {
		t.Errorf("got domain %q certified %v, want %s certified", g.signer.Domain(), g.signer.CertifiesDomain(), testDomain)
	}
	if kb, _ := pem.Decode(g.keyPEM); kb == nil || kb.Type != "PRIVATE KEY" {
		t.Errorf("got a key PEM that is not a PRIVATE KEY block, want PKCS#8")
	}
}

func TestSignVerify(t *testing.T) {
	g := testSigner(t)
	_, otherCert := testOtherKey(t)
	body := []byte(`{"controller_id":"ws_1","request_status":"completed"}`)
	signed := http.Header{}
	g.signer.SetHeaders(signed, body)

	only := func(name, value string) http.Header {
		h := http.Header{}
		h.Set(name, value)
		return h
	}
	sig := signed.Get(HeaderSignature)
	tests := []struct {
		name    string
		cert    []byte
		header  http.Header
		body    []byte
		wantErr bool
	}{
		{"round trip", g.certPEM, signed, body, false},
		{"v1 header only", g.certPEM, only(HeaderSignatureV1, sig), body, false},
		{"v2 header only", g.certPEM, only(HeaderSignature, sig), body, false},
		{"lower-case header name", g.certPEM, http.Header{"x-opendsr-signature": {sig}}, body, false},
		{"wrapped in lines", g.certPEM, only(HeaderSignature, sig[:64]+"\r\n"+sig[64:]), body, false},
		{"without padding", g.certPEM, only(HeaderSignature, strings.TrimRight(sig, "=")), body, false},
		{"tampered body", g.certPEM, signed, append(bytes.Clone(body[:len(body)-2]), `x"}`...), true},
		{"empty body", g.certPEM, signed, nil, true},
		{"wrong certificate", otherCert, signed, body, true},
		{"no signature", g.certPEM, http.Header{}, body, true},
		{"not base64", g.certPEM, only(HeaderSignature, "!!!"), body, true},
		{"truncated signature", g.certPEM, only(HeaderSignature, sig[:len(sig)/2]), body, true},
		{"certificate not PEM", []byte("not a certificate"), signed, body, true},
		{"key PEM instead of certificate", g.keyPEM, signed, body, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.cert, tt.header, tt.body)
			if !tt.wantErr {
				if err != nil {
					t.Errorf("got %v, want the signature verified", err)
				}
				return
			}
			if !errors.Is(err, &cdp.Error{Kind: cdp.Unauthenticated, Code: "invalid_signature"}) {
				t.Errorf("got %v (kind %v), want unauthenticated invalid_signature", err, cdp.ErrorKind(err))
			}
		})
	}
}

func TestSetHeaders(t *testing.T) {
	g := testSigner(t)
	body := []byte(`{"a":1}`)
	h := http.Header{}
	g.signer.SetHeaders(h, body)
	want := map[string]string{
		HeaderDomain: testDomain, HeaderDomainV1: testDomain,
		HeaderSignature: g.signer.Sign(body), HeaderSignatureV1: g.signer.Sign(body),
	}
	for name, value := range want {
		if got := h.Get(name); got != value {
			t.Errorf("%s: got %q, want %q", name, got, value)
		}
	}
	raw, err := base64.StdEncoding.DecodeString(h.Get(HeaderSignature))
	if err != nil || len(raw) != 3072/8 {
		t.Errorf("got a %d-byte signature (%v), want 384 bytes of standard base64", len(raw), err)
	}
}

func TestLoadSigner(t *testing.T) {
	g := testSigner(t)
	other, otherCert := testOtherKey(t)
	block, _ := pem.Decode(g.keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallCert, err := selfSigned(small, testDomain, testNow)
	if err != nil {
		t.Fatal(err)
	}
	smallPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})
	otherPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})

	tests := []struct {
		name     string
		key      []byte
		cert     []byte
		domain   string
		wantCode string // "" when it loads
	}{
		{"generated PKCS#8", g.keyPEM, g.certPEM, testDomain, ""},
		{"PKCS#1", pkcs1, g.certPEM, testDomain, ""},
		{"certificate after another block", g.keyPEM, append(bytes.Clone(g.keyPEM), g.certPEM...), testDomain, ""},
		{"another domain still loads", g.keyPEM, g.certPEM, "custos.other.example", ""},
		{"mismatched key and certificate", g.keyPEM, otherCert, testDomain, "key_mismatch"},
		{"mismatched the other way", otherPEM, g.certPEM, testDomain, "key_mismatch"},
		{"key too small", smallPEM, smallCert, testDomain, "invalid_key"},
		{"key not PEM", []byte("secret"), g.certPEM, testDomain, "invalid_key"},
		{"key block of another type", g.certPEM, g.certPEM, testDomain, "invalid_key"},
		{"broken PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1, 2}}), g.certPEM, testDomain, "invalid_key"},
		{"broken PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), g.certPEM, testDomain, "invalid_key"},
		{"certificate missing", g.keyPEM, nil, testDomain, "invalid_certificate"},
		{"empty domain", g.keyPEM, g.certPEM, "", "invalid_domain"},
		{"domain with a header break", g.keyPEM, g.certPEM, "custos.example\r\nX-Evil: 1", "invalid_domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadSigner(tt.key, tt.cert, tt.domain)
			if tt.wantCode != "" {
				if !errors.Is(err, &cdp.Error{Kind: cdp.Invalid, Code: tt.wantCode}) {
					t.Fatalf("got %v, want invalid %s", err, tt.wantCode)
				}
				if err != nil && (strings.Contains(err.Error(), "-----") || strings.Contains(err.Error(), keyMaterial(tt.key))) {
					t.Errorf("got error %q, want no key material in it", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want the signer loaded", err)
			}
			body := []byte(`{"loaded":true}`)
			h := http.Header{}
			s.SetHeaders(h, body)
			if err := Verify(g.certPEM, h, body); err != nil {
				t.Errorf("got %v verifying the loaded signer's signature with the generated certificate, want none", err)
			}
			if s.Domain() != tt.domain {
				t.Errorf("got domain %q, want %q", s.Domain(), tt.domain)
			}
			if want := tt.domain == testDomain; s.CertifiesDomain() != want {
				t.Errorf("got CertifiesDomain %v, want %v", s.CertifiesDomain(), want)
			}
		})
	}
}

func TestGenerateSignerRefusesBadDomain(t *testing.T) {
	for _, domain := range []string{"", "custos example", "custos.example/path", ".custos.example"} {
		t.Run(domain, func(t *testing.T) {
			if _, _, _, err := GenerateSigner(domain, time.Now()); !errors.Is(err, &cdp.Error{Kind: cdp.Invalid, Code: "invalid_domain"}) {
				t.Errorf("got %v, want invalid invalid_domain", err)
			}
		})
	}
}

func TestNewSignerIPDomain(t *testing.T) {
	k, err := otherKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := selfSigned(k, "127.0.0.1", testNow)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(k, cert, "127.0.0.1")
	if err != nil || !s.CertifiesDomain() {
		t.Fatalf("got %v, certified %v; want a signer certified for 127.0.0.1", err, err == nil && s.CertifiesDomain())
	}
}

// keyMaterial is a piece of a PEM block's base64 content, or a string no
// message holds.
func keyMaterial(p []byte) string {
	lines := strings.Split(string(p), "\n")
	if len(lines) > 2 && len(lines[1]) >= 16 {
		return lines[1][:16]
	}
	return "\x00no key material\x00"
}
