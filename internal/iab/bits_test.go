package iab

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestNewBitReader(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		bits   int
		reason string // "" when it decodes
	}{
		{"empty", "", 0, ""},
		{"one character, 6 bits", "D", 6, ""},
		{"length 1 mod 4 is not a partial byte here", "DBABM", 30, ""},
		{"whole alphabet", testAlphabet, 64 * 6, ""},
		{"padding", "DBABMA==", 0, ReasonInvalidBase64},
		{"standard base64 plus", "DB+A", 0, ReasonInvalidBase64},
		{"standard base64 slash", "DB/A", 0, ReasonInvalidBase64},
		{"space", "DB A", 0, ReasonInvalidBase64},
		{"non-ASCII", "DBé", 0, ReasonInvalidBase64},
		{"dot belongs to the caller", "DB.A", 0, ReasonInvalidBase64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := newBitReader(tt.in, "segment")
			if tt.reason != "" {
				if got := reasonOf(err); got != tt.reason {
					t.Fatalf("reason %q (%v), want %q", got, err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if r.n != tt.bits {
				t.Errorf("got %d bits, want %d", r.n, tt.bits)
			}
		})
	}
}

// TestNewBitReaderMatchesEncodingBase64 holds the decoder to the standard
// library's on every length the standard library accepts.
func TestNewBitReaderMatchesEncodingBase64(t *testing.T) {
	for _, in := range []string{"A", "QA", "YAb", "CPXx", "BVQqAAAAAAJY", "DBACNYA", "_-_-9zZa"} {
		want, err := base64.RawURLEncoding.DecodeString(in)
		if len(in)%4 == 1 {
			if err == nil {
				t.Fatalf("%s: encoding/base64 accepted a length of 1 mod 4", in)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		r, err := newBitReader(in, "segment")
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		// The last byte may carry the zero padding bits the standard library
		// drops; the bits before them must agree.
		if got := r.buf[:len(want)]; !bytes.Equal(got, want) {
			t.Errorf("%s: got %x, want %x", in, got, want)
		}
	}
}

func TestBitReaderFields(t *testing.T) {
	w := &bitWriter{}
	w.int(3, 6).int(1, 6).uint(1<<35|12345, 36).bool(true).int(0, 1).int(4095, 12)
	r, err := newBitReader(w.base64(), "segment")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.int(6, "a"); got != 3 {
		t.Errorf("6-bit got %d, want 3", got)
	}
	if got := r.int(6, "b"); got != 1 {
		t.Errorf("6-bit got %d, want 1", got)
	}
	if got := r.uint(36, "c"); got != 1<<35|12345 {
		t.Errorf("36-bit got %d, want %d", got, uint64(1<<35|12345))
	}
	if got := r.bool("d"); !got {
		t.Error("bool got false, want true")
	}
	if got := r.bool("e"); got {
		t.Error("bool got true, want false")
	}
	if got := r.int(12, "f"); got != 4095 {
		t.Errorf("12-bit got %d, want 4095", got)
	}
	if r.err != nil {
		t.Fatalf("got %v, want no error", r.err)
	}
	// 6+6+36+1+1+12 = 62 bits of the 66 in 11 characters are read; 4 are
	// padding, so a 5-bit field does not fit.
	if got := r.int(5, "beyond"); got != 0 {
		t.Errorf("read past the end got %d, want 0", got)
	}
	var e *Error
	if !errors.As(r.err, &e) || e.Reason != ReasonTruncated || e.Detail != "beyond" {
		t.Fatalf("got %v, want truncated: beyond", r.err)
	}
	// The first failure sticks.
	r.int(1, "later")
	if e.Detail != "beyond" || r.err.(*Error).Detail != "beyond" {
		t.Errorf("got %v, want the first error kept", r.err)
	}
}

func TestFibonacci(t *testing.T) {
	// The first seven rows are the table of the GPP "Consent String
	// Specification"; the rest are computed by hand.
	tests := []struct {
		code string
		want int
	}{
		{"11", 1},
		{"011", 2},
		{"0011", 3},
		{"1011", 4},
		{"00011", 5},
		{"10011", 6},
		{"01011", 7},
		{"000011", 8},
		{"101011", 12},
		{"0000000011", 55},
		{"1010101011", 88},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			w := &bitWriter{}
			for _, c := range tt.code {
				w.int(int(c-'0'), 1)
			}
			r, err := newBitReader(w.base64(), "segment")
			if err != nil {
				t.Fatal(err)
			}
			if got := r.fibonacci("f"); got != tt.want || r.err != nil {
				t.Errorf("got %d (%v), want %d", got, r.err, tt.want)
			}
			if r.pos != len(tt.code) {
				t.Errorf("consumed %d bits, want %d", r.pos, len(tt.code))
			}
			// The test encoder agrees with the table.
			if got := string(bitString((&bitWriter{}).fibonacci(tt.want))); got != tt.code {
				t.Errorf("encoder wrote %s, want %s", got, tt.code)
			}
		})
	}
}

func TestFibonacciRefuses(t *testing.T) {
	tests := []struct {
		name   string
		w      *bitWriter
		reason string
	}{
		{"no terminator", (&bitWriter{}).int(0b010101, 6), ReasonTruncated},
		{"empty", &bitWriter{}, ReasonTruncated},
		{"44 digits fit", (&bitWriter{}).fibonacci(1836311902), ""},
		{"45 digits do not", (&bitWriter{}).fibonacci(1836311903), ReasonInvalidField},
		{"endless zeros", (&bitWriter{}).uint(0, 60).int(0b11, 2), ReasonInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := newBitReader(tt.w.base64(), "segment")
			if err != nil {
				t.Fatal(err)
			}
			v := r.fibonacci("f")
			if got := reasonOf(r.err); got != tt.reason {
				t.Errorf("reason %q (%v), value %d, want %q", got, r.err, v, tt.reason)
			}
		})
	}
}

func bitString(w *bitWriter) []byte {
	out := make([]byte, len(w.bits))
	for i, b := range w.bits {
		out[i] = '0' + b
	}
	return out
}

// reasonOf returns the Reason of an *Error, "" for nil and "not *Error"
// for anything else, so a test fails on a foreign error type.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if !errors.As(err, &e) {
		return "not *Error"
	}
	return e.Reason
}
