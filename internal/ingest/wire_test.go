package ingest

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFlexString(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{`"u-1"`, "u-1", false},
		{`"caf\u00e9 \"x\""`, `café "x"`, false},
		{`"naïve"`, "naïve", false},
		{`null`, "", false},
		{`12345`, "12345", false},
		{`-7`, "-7", false},
		{`12345678901234567890123`, "12345678901234567890123", false},
		{`1e3`, "1000", false},
		{`1.50`, "1.5", false},
		{`true`, "", true},
		{`{}`, "", true},
		{`[]`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var f flexString
			err := json.Unmarshal([]byte(tt.in), &f)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if string(f) != tt.want {
				t.Errorf("got %q, want %q", f, tt.want)
			}
		})
	}
}

func TestWireTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantBad bool
	}{
		{`"2025-11-28T10:00:00Z"`, time.Date(2025, 11, 28, 10, 0, 0, 0, time.UTC), false},
		{`"2025-11-28T10:00:00.123+02:00"`, time.Date(2025, 11, 28, 8, 0, 0, 123e6, time.UTC), false},
		{`"2025-11-28T10:00:00.123456789Z"`, time.Date(2025, 11, 28, 10, 0, 0, 123456789, time.UTC), false},
		{`null`, time.Time{}, false},
		{`""`, time.Time{}, false},
		{`"0001-01-01T00:00:00Z"`, time.Time{}, false},
		{`"2025-11-28 10:00:00"`, time.Time{}, true},
		{`"1600-01-01T00:00:00Z"`, time.Time{}, true},
		{`1764300000`, time.Time{}, true},
		{`{}`, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var w wireTime
			if err := json.Unmarshal([]byte(tt.in), &w); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if w.bad != tt.wantBad || !w.t.Equal(tt.want) {
				t.Errorf("got %v (bad %v), want %v (bad %v)", w.t, w.bad, tt.want, tt.wantBad)
			}
			if !w.t.IsZero() && w.t.Location() != time.UTC {
				t.Errorf("got location %v, want UTC", w.t.Location())
			}
		})
	}
}

func TestMSTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantBad bool
	}{
		{`1764300000123`, time.UnixMilli(1764300000123).UTC(), false},
		{`1.764300000123e12`, time.UnixMilli(1764300000123).UTC(), false},
		{`0`, time.Time{}, false},
		{`null`, time.Time{}, false},
		{`"1764300000123"`, time.Time{}, true},
		{`99999999999999999`, time.Time{}, true},
		{`-99999999999999999`, time.Time{}, true},
		{`1e300`, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var m msTime
			if err := json.Unmarshal([]byte(tt.in), &m); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if m.bad != tt.wantBad || !m.t.Equal(tt.want) {
				t.Errorf("got %v (bad %v), want %v (bad %v)", m.t, m.bad, tt.want, tt.wantBad)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"203.0.113.9", "203.0.113.9"},
		{" 2001:DB8::1 ", "2001:db8::1"},
		{"::ffff:203.0.113.9", "203.0.113.9"},
		{"fe80::1%eth0", "fe80::1"},
		{"203.0.113.9:443", ""},
		{"example.com", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := clientIP(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewMessageID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newMessageID()
		if !uuidV4.MatchString(id) {
			t.Fatalf("got %q, want a UUIDv4", id)
		}
		if seen[id] {
			t.Fatalf("got %q twice, want unique ids", id)
		}
		seen[id] = true
	}
}

func TestReasonLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"missing_identity", "missing_identity"},
		{"", "other"},
		{"ada@example.com", "other"},
		{"Unknown", "other"},
		{"a_very_long_code_that_nobody_would_ever_define_here", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := reasonLabel(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
