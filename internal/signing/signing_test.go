package signing

import (
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKey()
	jws, err := Sign(k, "custos-consent-receipt+jwt", []byte(`{"purpose":"marketing"}`))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := Verify(k.Public(), jws)
	if err != nil || string(payload) != `{"purpose":"marketing"}` {
		t.Fatalf("verify: %q, %v", payload, err)
	}
	parts := strings.Split(jws, ".")
	tampered := parts[0] + "." + b64.EncodeToString([]byte(`{"purpose":"analytics"}`)) + "." + parts[2]
	tests := []struct {
		name string
		key  Key
		jws  string
	}{
		{"other key", other, jws},
		{"tampered payload", k, tampered},
		{"not a jws", k, "abc"},
		{"bad base64", k, "!!.!!.!!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Verify(tt.key.Public(), tt.jws); err != ErrBadSignature {
				t.Errorf("got %v, want ErrBadSignature", err)
			}
		})
	}
	if jwk := PublicJWK(k.ID, k.Public()); jwk.Kty != "OKP" || jwk.Crv != "Ed25519" || jwk.Kid != KeyID(k.Public()) {
		t.Errorf("jwk %+v", jwk)
	}
}
