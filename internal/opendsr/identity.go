package opendsr

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"

	"github.com/custos-cdp/custos/internal/cdp"
)

// The identity formats: the value as is, or the lower-case hex of a hash of
// its normalised form.
const (
	FormatRaw    = "raw"
	FormatSHA1   = "sha1"
	FormatMD5    = "md5"
	FormatSHA256 = "sha256"
)

// IdentityTypes and IdentityFormats list the identity types and formats of
// the OpenDSR specification, all of which Custos takes. They are shared: do
// not modify them.
var (
	IdentityTypes = []string{
		"controller_customer_id", "email", "android_advertising_id", "android_id",
		"ios_advertising_id", "ios_vendor_id", "fire_advertising_id", "microsoft_advertising_id",
		"microsoft_publisher_id", "roku_publisher_id", "roku_advertising_id",
	}
	IdentityFormats = []string{FormatRaw, FormatSHA1, FormatMD5, FormatSHA256}
)

// custosTypes maps OpenDSR identity types to Custos identity types. Types
// Custos has no built-in name for are custom types of the same name.
var custosTypes = map[string]cdp.IdentityType{
	"controller_customer_id":   cdp.UserID,
	"email":                    cdp.Email,
	"android_advertising_id":   cdp.AndroidAAID,
	"android_id":               cdp.AndroidID,
	"ios_advertising_id":       cdp.IOSIDFA,
	"ios_vendor_id":            cdp.IOSIDFV,
	"fire_advertising_id":      cdp.CustomIdentity("fire_advertising_id"),
	"microsoft_advertising_id": cdp.CustomIdentity("microsoft_advertising_id"),
	"microsoft_publisher_id":   cdp.CustomIdentity("microsoft_publisher_id"),
	"roku_publisher_id":        cdp.CustomIdentity("roku_publisher_id"),
	"roku_advertising_id":      cdp.CustomIdentity("roku_advertising_id"),
}

// hexLen is the length of each hash format's hex digest.
var hexLen = map[string]int{FormatSHA1: 2 * sha1.Size, FormatMD5: 2 * md5.Size, FormatSHA256: 2 * sha256.Size}

// CustosType returns the Custos identity type of an OpenDSR identity type,
// and false for a type the specification does not name. Names are matched
// exactly, as the specification spells them.
func CustosType(identityType string) (cdp.IdentityType, bool) {
	t, ok := custosTypes[identityType]
	return t, ok
}

// Normalised returns the form of an identity value that Custos stores and
// compares: for a raw value (format raw or empty), the value normalised for
// its Custos type t; for a hashed value, its hex digest in lower case.
func Normalised(t cdp.IdentityType, format, value string) string {
	if format == "" || format == FormatRaw {
		return cdp.NormalizeIdentityValue(t, value)
	}
	return strings.ToLower(strings.TrimSpace(value))
}

// HashIdentity returns what a controller sends for an identity in format:
// the lower-case hex of the sha1, md5 or sha256 of its normalised value, or
// the value itself for raw. An unknown format gives "", which matches
// nothing. A hashed identity in a request is matched by hashing the values
// Custos holds and comparing.
func HashIdentity(format, normalisedValue string) string {
	var h hash.Hash
	switch format {
	case "", FormatRaw:
		return normalisedValue
	case FormatSHA1:
		h = sha1.New()
	case FormatMD5:
		h = md5.New()
	case FormatSHA256:
		h = sha256.New()
	default:
		return ""
	}
	h.Write([]byte(normalisedValue))
	return hex.EncodeToString(h.Sum(nil))
}
