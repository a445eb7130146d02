package iab

// Both frameworks define their strings as bit fields written most
// significant bit first and then cut into 6-bit groups, one base64url
// character each, with no '=' padding (TCF "Consent string and vendor list
// formats v2", "TC String Format"; GPP "Consent String Specification",
// "Creating a GPP String" step 1). The decoder below therefore maps
// characters to 6-bit groups itself instead of using encoding/base64: a
// segment whose length is 1 mod 4 is legal here (it holds 6 bits, not a
// partial byte), and the reader needs the exact number of bits, 6 per
// character, to tell a truncated field from padding.

const invalidChar = 0xFF

// base64URL maps a byte to its 6-bit value, or invalidChar.
var base64URL = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = invalidChar
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// bitReader reads fields from a decoded segment. The first failure sticks:
// later reads return zero and the caller checks err once per group of
// fields, and always before it allocates or loops on a value it read.
type bitReader struct {
	buf []byte
	n   int // bits in the segment: 6 per character
	pos int
	err error
}

// newBitReader decodes one unpadded base64url segment. what names the
// segment in the error.
func newBitReader(s, what string) (*bitReader, error) {
	buf := make([]byte, 0, (len(s)*6+7)/8)
	var acc uint32
	nacc := 0
	for i := 0; i < len(s); i++ {
		v := base64URL[s[i]]
		if v == invalidChar {
			if s[i] == '=' {
				return nil, errorf(ReasonInvalidBase64, what+": padding '=' is not allowed")
			}
			return nil, errorf(ReasonInvalidBase64, what+": character outside the base64url alphabet")
		}
		acc = acc<<6 | uint32(v)
		nacc += 6
		if nacc >= 8 {
			nacc -= 8
			buf = append(buf, byte(acc>>nacc))
			acc &= 1<<nacc - 1
		}
	}
	if nacc > 0 {
		buf = append(buf, byte(acc<<(8-nacc)))
	}
	return &bitReader{buf: buf, n: len(s) * 6}, nil
}

func (r *bitReader) left() int { return r.n - r.pos }

// fail records the first error only: it is the one that explains the rest.
func (r *bitReader) fail(reason, detail string) {
	if r.err == nil {
		r.err = errorf(reason, detail)
	}
}

// uint reads an n-bit (n <= 64) unsigned big-endian integer, up to a byte
// at a time.
func (r *bitReader) uint(n int, field string) uint64 {
	if r.err != nil {
		return 0
	}
	if n > r.left() {
		r.fail(ReasonTruncated, field)
		r.pos = r.n
		return 0
	}
	var v uint64
	for n > 0 {
		off := r.pos & 7
		take := min(8-off, n)
		chunk := r.buf[r.pos>>3] >> (8 - off - take) & (1<<take - 1)
		v = v<<take | uint64(chunk)
		r.pos += take
		n -= take
	}
	return v
}

// ones returns the 1-based positions of the set bits among the next n,
// the decoding of a BitField. The caller has checked that n bits are left.
func (r *bitReader) ones(n int) []int {
	var out []int
	for i := range n {
		p := r.pos + i
		if r.buf[p>>3]&(0x80>>(p&7)) != 0 {
			out = append(out, i+1)
		}
	}
	r.pos += n
	return out
}

// int reads an n-bit field with n <= 31, so the value fits an int on every
// platform Go supports.
func (r *bitReader) int(n int, field string) int { return int(r.uint(n, field)) }

func (r *bitReader) bool(field string) bool { return r.uint(1, field) == 1 }

// maxFibonacciDigits bounds a Fibonacci code word. With 44 digits before the
// terminating 1 the largest value is F(46)-1 = 1,836,311,902, which fits an
// int32; longer words only come from hostile input.
const maxFibonacciDigits = 44

// fibonacci reads a Fibonacci-coded integer (GPP "Consent String
// Specification", "Fibonacci Encoding to Deal with String Length"): digit i
// stands for F(i+2) = 1, 2, 3, 5, 8, ..., least significant first, and the
// word ends at the first pair of 1 bits. A Zeckendorf representation never
// has two adjacent 1s, so that pair is unambiguous and every value is >= 1.
func (r *bitReader) fibonacci(field string) int {
	var v, f, next uint64 = 0, 1, 2
	prev := false
	for digits := 0; ; digits++ {
		bit := r.bool(field)
		if r.err != nil {
			return 0
		}
		if bit && prev {
			return int(v)
		}
		if digits == maxFibonacciDigits {
			r.fail(ReasonInvalidField, field+": Fibonacci integer too large")
			return 0
		}
		if bit {
			v += f
		}
		f, next = next, f+next
		prev = bit
	}
}
