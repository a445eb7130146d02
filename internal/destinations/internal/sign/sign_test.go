package sign

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

func TestHeader(t *testing.T) {
	now := time.Unix(1764363332, 0)
	body := []byte(`{"a":1}`)
	tests := []struct {
		name          string
		secret        []byte
		wantSignature bool
	}{
		{"with a secret", []byte("0123456789abcdef"), true},
		{"without a secret", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			Header(h, tt.secret, now, body)
			if got := h.Get(TimestampHeader); got != "1764363332" {
				t.Errorf("timestamp: got %q, want %q", got, "1764363332")
			}
			sig := h.Get(SignatureHeader)
			if (sig != "") != tt.wantSignature {
				t.Fatalf("signature: got %q, want present %v", sig, tt.wantSignature)
			}
			if tt.wantSignature {
				if err := Verify(string(tt.secret), h.Get(TimestampHeader), sig, body, now, 0); err != nil {
					t.Errorf("Verify: got %v, want nil", err)
				}
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		want string
	}{
		// sha256("") and sha256("a\nb"), computed with sha256sum.
		{"empty", nil, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"two keys", []string{"a", "b"}, "7e18f737311b2dc3b2f269dd78396b0351f14fb66efa879f768cb23181883c78"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batch := make([]cdp.Delivery, len(tt.keys))
			for i, k := range tt.keys {
				batch[i].Key = k
			}
			if got := IdempotencyKey(batch); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSecret(t *testing.T) {
	tests := []struct {
		name     string
		creds    string
		required bool
		want     string
		wantErr  bool
	}{
		{"required and given", `{"secret":"0123456789abcdef"}`, true, "0123456789abcdef", false},
		{"sixteen characters, more bytes", `{"secret":"ééééééééééééééé1"}`, true, "ééééééééééééééé1", false},
		{"required, none", ``, true, "", true},
		{"required, empty object", `{}`, true, "", true},
		{"optional, none", ``, false, "", false},
		{"optional, empty object", `{}`, false, "", false},
		{"optional, too short", `{"secret":"short"}`, false, "", true},
		{"unknown field", `{"secret":"0123456789abcdef","extra":1}`, true, "", true},
		{"not an object", `["0123456789abcdef"]`, true, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Secret([]byte(tt.creds), tt.required)
			if (err != nil) != tt.wantErr || string(got) != tt.want {
				t.Fatalf("got %q, %v, want %q and error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !cdp.IsKind(err, cdp.Invalid) {
				t.Errorf("got kind %v, want invalid", cdp.ErrorKind(err))
			}
		})
	}
}

// FuzzVerify checks that Verify never panics on hostile headers, and that
// what Header signs always verifies.
func FuzzVerify(f *testing.F) {
	f.Add("0123456789abcdef", "1764363332", "v1=00", []byte(`{}`), int64(1764363332))
	f.Add("", "-1", "v1=,v1=zz,,", []byte(nil), int64(0))
	f.Add("k", "99999999999999999999", "v2=ab", []byte("x"), int64(-1))
	f.Fuzz(func(t *testing.T, secret, ts, sig string, body []byte, now int64) {
		at := time.Unix(now, 0)
		_ = Verify(secret, ts, sig, body, at, time.Minute)
		stamp := strconv.FormatInt(at.Unix(), 10)
		if err := Verify(secret, stamp, Signature([]byte(secret), stamp, body), body, at, time.Minute); at.Unix() >= 0 && err != nil {
			t.Errorf("a fresh signature: got %v, want nil", err)
		}
	})
}
