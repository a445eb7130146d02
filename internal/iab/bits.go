package iab

import "encoding/base64"

// bitReader reads big-endian bit fields from decoded bytes and reports
// running out instead of panicking.
type bitReader struct {
	b   []byte
	pos int // in bits
	err error
}

func (r *bitReader) left() int { return len(r.b)*8 - r.pos }

// uint reads n (<= 64) bits as an unsigned integer.
func (r *bitReader) uint(n int, field string) uint64 {
	if r.err != nil {
		return 0
	}
	if n > r.left() {
		r.err = &Error{Reason: "truncated", Detail: field}
		return 0
	}
	var v uint64
	for i := 0; i < n; i++ {
		byteIdx, bitIdx := (r.pos+i)/8, 7-(r.pos+i)%8
		v = v<<1 | uint64(r.b[byteIdx]>>bitIdx&1)
	}
	r.pos += n
	return v
}

func (r *bitReader) int(n int, field string) int { return int(r.uint(n, field)) }
func (r *bitReader) bool(field string) bool      { return r.uint(1, field) == 1 }

// fibonacci reads a Fibonacci-coded positive integer (terminated by two 1
// bits), as GPP encodes ranges.
func (r *bitReader) fibonacci(field string) int {
	fib := []int{1, 2}
	sum, prev := 0, false
	for i := 0; ; i++ {
		if r.err != nil {
			return 0
		}
		if i >= 40 {
			r.err = &Error{Reason: "invalid_field", Detail: field + ": Fibonacci integer too long"}
			return 0
		}
		for len(fib) <= i {
			fib = append(fib, fib[len(fib)-1]+fib[len(fib)-2])
		}
		bit := r.bool(field)
		if bit && prev {
			return sum
		}
		if bit {
			sum += fib[i]
		}
		prev = bit
	}
}

// decode reads a web-safe base64 segment. The specifications omit padding;
// some producers add it, so trailing '=' is tolerated.
func decode(s, field string) ([]byte, error) {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, &Error{Reason: "invalid_base64", Detail: field}
	}
	return b, nil
}
