package outbound

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/custos-cdp/custos/internal/cdp"
)

// ErrPinMismatch is wrapped by the error of a connection whose verified
// chain holds no pinned key, and of a plain-http request on a client with
// pins (which can never present one).
var ErrPinMismatch error = cdp.Reason(cdp.Invalid, "pin_mismatch",
	"no certificate of the server's verified chain has a pinned public key")

// SPKIHash returns the base64 (standard encoding) SHA-256 of cert's
// SubjectPublicKeyInfo: the form Config.PinSHA256 takes, the same as an
// HPKP pin-sha256 value.
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// pinSet holds the SHA-256 hashes of the pinned SubjectPublicKeyInfos.
type pinSet [][sha256.Size]byte

// parsePins decodes pins; one that is not the standard base64 of 32 bytes
// is an Invalid *cdp.Error with code "invalid_pin".
func parsePins(pins []string) (pinSet, error) {
	set := make(pinSet, 0, len(pins))
	for i, p := range pins {
		b, err := base64.StdEncoding.Strict().DecodeString(p)
		if err != nil || len(b) != sha256.Size {
			return nil, cdp.Reason(cdp.Invalid, "invalid_pin",
				fmt.Sprintf("pin %d is not the base64 of a SHA-256 hash (44 characters ending in =)", i+1))
		}
		set = append(set, [sha256.Size]byte(b))
	}
	return set, nil
}

// verifyConnection is the tls.Config.VerifyConnection of a pinned client.
// It runs after the chain has been verified, on every handshake, resumed
// ones included (VerifyPeerCertificate is skipped on resumption), and
// accepts the connection if any certificate of any verified chain (leaf,
// intermediate or root) has a pinned key. Certificates the server sent
// that are not part of a verified chain do not count.
func (p pinSet) verifyConnection(cs tls.ConnectionState) error {
	for _, chain := range cs.VerifiedChains {
		for _, cert := range chain {
			if slices.Contains(p, sha256.Sum256(cert.RawSubjectPublicKeyInfo)) {
				return nil
			}
		}
	}
	leaf := "none"
	if len(cs.PeerCertificates) > 0 {
		leaf = SPKIHash(cs.PeerCertificates[0])
	}
	return fmt.Errorf("server key %s: %w", leaf, ErrPinMismatch)
}
