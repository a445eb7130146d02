package opendsr

import (
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

func TestCustosType(t *testing.T) {
	tests := []struct {
		in     string
		want   cdp.IdentityType
		wantOK bool
	}{
		{"controller_customer_id", cdp.UserID, true},
		{"email", cdp.Email, true},
		{"android_advertising_id", cdp.AndroidAAID, true},
		{"android_id", cdp.AndroidID, true},
		{"ios_advertising_id", cdp.IOSIDFA, true},
		{"ios_vendor_id", cdp.IOSIDFV, true},
		{"fire_advertising_id", "custom:fire_advertising_id", true},
		{"microsoft_advertising_id", "custom:microsoft_advertising_id", true},
		{"microsoft_publisher_id", "custom:microsoft_publisher_id", true},
		{"roku_publisher_id", "custom:roku_publisher_id", true},
		{"roku_advertising_id", "custom:roku_advertising_id", true},
		{"Email", "", false},
		{"phone", "", false},
		{"mpid", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := CustosType(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got %q %v, want %q %v", got, ok, tt.want, tt.wantOK)
			}
			if ok && !got.Valid() {
				t.Errorf("got %q, want a valid Custos identity type", got)
			}
		})
	}
	for _, name := range IdentityTypes {
		if _, ok := CustosType(name); !ok {
			t.Errorf("IdentityTypes lists %s: got no Custos type, want one", name)
		}
	}
}

func TestHashIdentity(t *testing.T) {
	tests := []struct {
		format, value, want string
	}{
		{"sha256", "ada@example.com", adaSHA256},
		{"sha1", "ada@example.com", adaSHA1},
		{"md5", "ada@example.com", adaMD5},
		{"sha256", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"raw", "ada@example.com", "ada@example.com"},
		{"", "ada@example.com", "ada@example.com"},
		{"sha512", "ada@example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.format+" "+tt.value, func(t *testing.T) {
			if got := HashIdentity(tt.format, tt.value); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNormalised(t *testing.T) {
	tests := []struct {
		name   string
		typ    cdp.IdentityType
		format string
		value  string
		want   string
	}{
		{"raw email", cdp.Email, "raw", "  Ada@Example.COM ", "ada@example.com"},
		{"empty format is raw", cdp.Email, "", "Ada@Example.com", "ada@example.com"},
		{"raw device id", cdp.IOSIDFA, "raw", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
		{"raw user id keeps case", cdp.UserID, "raw", " Customer-42 ", "Customer-42"},
		{"hashed", cdp.Email, "sha256", adaSHA256, adaSHA256},
		{"hashed lower-cased", cdp.Email, "md5", "3E3417D7EF77D5932A6734B916515ED5", adaMD5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Normalised(tt.typ, tt.format, tt.value); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// A controller hashing the normalised form of what Custos holds sends
	// what HashIdentity computes.
	if got := HashIdentity("sha256", Normalised(cdp.Email, "raw", " ADA@example.com")); got != adaSHA256 {
		t.Errorf("got %s, want %s", got, adaSHA256)
	}
}

func TestFingerprint(t *testing.T) {
	base := Request{
		APIVersion: "2.0", Regulation: "gdpr", SubjectRequestID: testID, SubjectRequestType: "erasure",
		SubmittedTime: time.Date(2027, 3, 9, 15, 0, 0, 0, time.UTC),
		SubjectIdentities: []SubjectIdentity{
			{IdentityType: "email", IdentityValue: "ada@example.com", IdentityFormat: "raw"},
			{IdentityType: "controller_customer_id", IdentityValue: "42", IdentityFormat: "raw"},
			{IdentityType: "email", IdentityValue: adaSHA256, IdentityFormat: "sha256"},
		},
		StatusCallbackURLs: []string{"https://a.example/cb", "https://b.example/cb"},
	}
	edit := func(f func(r *Request)) Request {
		r := base
		r.SubjectIdentities = append([]SubjectIdentity(nil), base.SubjectIdentities...)
		r.StatusCallbackURLs = append([]string(nil), base.StatusCallbackURLs...)
		f(&r)
		return r
	}
	want := Fingerprint(base)
	if len(want) != 64 || !isLowerHex(want) {
		t.Fatalf("got fingerprint %q, want 64 lower-case hex digits", want)
	}
	same := []struct {
		name string
		r    Request
	}{
		{"identities reordered", edit(func(r *Request) {
			ids := r.SubjectIdentities
			ids[0], ids[1], ids[2] = ids[2], ids[0], ids[1]
		})},
		{"callbacks reordered", edit(func(r *Request) {
			r.StatusCallbackURLs[0], r.StatusCallbackURLs[1] = r.StatusCallbackURLs[1], r.StatusCallbackURLs[0]
		})},
		{"same instant in another zone", edit(func(r *Request) {
			r.SubmittedTime = r.SubmittedTime.In(time.FixedZone("CEST", 2*3600))
		})},
		{"another spelling of the email", edit(func(r *Request) { r.SubjectIdentities[0].IdentityValue = " ADA@example.com" })},
		{"empty format for raw", edit(func(r *Request) { r.SubjectIdentities[1].IdentityFormat = "" })},
		{"api version and extensions ignored", edit(func(r *Request) {
			r.APIVersion, r.Extensions = "1.0", []byte(`{"x.example":{}}`)
		})},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fingerprint(tt.r); got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
	different := []struct {
		name string
		r    Request
	}{
		{"regulation", edit(func(r *Request) { r.Regulation = "ccpa" })},
		{"type", edit(func(r *Request) { r.SubjectRequestType = "access" })},
		{"id", edit(func(r *Request) { r.SubjectRequestID = "b7551968-d5d6-44b2-9831-815ac9017798" })},
		{"submitted time", edit(func(r *Request) { r.SubmittedTime = r.SubmittedTime.Add(time.Second) })},
		{"identity value", edit(func(r *Request) { r.SubjectIdentities[1].IdentityValue = "43" })},
		{"identity type", edit(func(r *Request) { r.SubjectIdentities[1].IdentityType = "android_id" })},
		{"identity format", edit(func(r *Request) { r.SubjectIdentities[2].IdentityFormat = "sha1" })},
		{"identity dropped", edit(func(r *Request) { r.SubjectIdentities = r.SubjectIdentities[:2] })},
		{"callback changed", edit(func(r *Request) { r.StatusCallbackURLs[1] = "https://c.example/cb" })},
		{"callback dropped", edit(func(r *Request) { r.StatusCallbackURLs = r.StatusCallbackURLs[:1] })},
		{"field boundaries", edit(func(r *Request) {
			// "gdpr"+"erasure" must not equal "gdpre"+"rasure".
			r.Regulation, r.SubjectRequestType = "gdpre", "rasure"
		})},
	}
	for _, tt := range different {
		t.Run("differs by "+tt.name, func(t *testing.T) {
			if got := Fingerprint(tt.r); got == want {
				t.Errorf("got the same fingerprint %s, want a different one", got)
			}
		})
	}
}

func TestFingerprintOfResentBody(t *testing.T) {
	first, err := ParseRequest(body(t, nil), testNow)
	if err != nil {
		t.Fatal(err)
	}
	resent, err := ParseRequest(body(t, func(m map[string]any) {
		m["submitted_time"] = "2027-03-09T16:00:00+01:00"
		m["status_callback_urls"] = []any{"https://brand.example/opendsr/callbacks", "https://brand.example/opendsr/callbacks"}
	}), testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Fingerprint(resent), Fingerprint(first); got != want {
		t.Errorf("got %s for the resent body, want %s", got, want)
	}
}
