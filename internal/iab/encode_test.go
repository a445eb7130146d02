package iab

import (
	"encoding/base64"
	"time"
)

// bitWriter builds strings for the tests, field by field, the way the
// specifications lay them out.
type bitWriter struct {
	bits []bool
}

func (w *bitWriter) uint(v uint64, n int) *bitWriter {
	for i := n - 1; i >= 0; i-- {
		w.bits = append(w.bits, v>>uint(i)&1 == 1)
	}
	return w
}

func (w *bitWriter) int(v, n int) *bitWriter { return w.uint(uint64(v), n) }

func (w *bitWriter) bool(b bool) *bitWriter {
	if b {
		return w.int(1, 1)
	}
	return w.int(0, 1)
}

// fibonacci writes v > 0 in Fibonacci coding.
func (w *bitWriter) fibonacci(v int) *bitWriter {
	fib := []int{1, 2}
	for fib[len(fib)-1] <= v {
		fib = append(fib, fib[len(fib)-1]+fib[len(fib)-2])
	}
	code := make([]bool, len(fib))
	rest, top := v, 0
	for i := len(fib) - 1; i >= 0; i-- {
		if fib[i] <= rest {
			code[i] = true
			rest -= fib[i]
			if top == 0 {
				top = i
			}
		}
	}
	w.bits = append(w.bits, code[:top+1]...)
	w.bits = append(w.bits, true)
	return w
}

func (w *bitWriter) letters(s string) *bitWriter {
	return w.int(int(s[0]-'A'), 6).int(int(s[1]-'A'), 6)
}

func (w *bitWriter) String() string {
	b := make([]byte, (len(w.bits)+7)/8)
	for i, bit := range w.bits {
		if bit {
			b[i/8] |= 1 << (7 - i%8)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// tcOpts are the fields a test TC string varies.
type tcOpts struct {
	version        int
	created, upd   time.Time
	lang, country  string
	purposes       []int
	vendors        []int
	vendorsAsRange bool
	policy         int
}

func buildTC(o tcOpts) string {
	if o.version == 0 {
		o.version = 2
	}
	if o.lang == "" {
		o.lang = "EN"
	}
	if o.country == "" {
		o.country = "DE"
	}
	if o.policy == 0 {
		o.policy = 4
	}
	if o.created.IsZero() {
		o.created = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	}
	if o.upd.IsZero() {
		o.upd = o.created.Add(time.Hour)
	}
	w := &bitWriter{}
	w.int(o.version, 6).uint(uint64(o.created.UnixMilli()/100), 36).uint(uint64(o.upd.UnixMilli()/100), 36)
	w.int(7, 12).int(3, 12).int(1, 6).letters(o.lang).int(150, 12).int(o.policy, 6)
	w.bool(false).bool(false)
	w.int(0b100000000000, 12) // special feature 1
	for p := 1; p <= 24; p++ {
		on := false
		for _, q := range o.purposes {
			on = on || q == p
		}
		w.bool(on)
	}
	w.int(0, 24).bool(false).letters(o.country)
	maxID := 0
	for _, v := range o.vendors {
		maxID = max(maxID, v)
	}
	w.int(maxID, 16)
	if o.vendorsAsRange {
		w.bool(true).int(len(o.vendors), 12)
		for _, v := range o.vendors {
			w.bool(false).int(v, 16)
		}
	} else {
		w.bool(false)
		for id := 1; id <= maxID; id++ {
			on := false
			for _, v := range o.vendors {
				on = on || v == id
			}
			w.bool(on)
		}
	}
	w.int(0, 16).bool(false) // no LI vendors
	w.int(0, 12)             // no publisher restrictions
	return w.String()
}

// gppHeader encodes a GPP header listing section ids.
func gppHeader(ids ...int) string {
	w := &bitWriter{}
	w.int(3, 6).int(1, 6).int(len(ids), 12)
	last := 0
	for _, id := range ids {
		w.bool(false).fibonacci(id - last)
		last = id
	}
	return w.String()
}

// usnat encodes a usnat (v1) core with the given opt-outs and a GPC
// subsection if gpc is not nil.
func usnat(sale, sharing, targeted int, gpc *bool) string {
	w := &bitWriter{}
	w.int(1, 6)
	for range 6 {
		w.int(1, 2) // notices provided
	}
	w.int(sale, 2).int(sharing, 2).int(targeted, 2)
	for range 12 {
		w.int(0, 2)
	}
	w.int(0, 2).int(0, 2) // child consents
	w.int(0, 2).int(1, 2).int(2, 2).int(2, 2)
	s := w.String()
	if gpc != nil {
		g := &bitWriter{}
		g.int(1, 2).bool(*gpc)
		s += "." + g.String()
	}
	return s
}

func usca(sale, sharing int) string {
	w := &bitWriter{}
	w.int(1, 6).int(1, 2).int(1, 2).int(1, 2).int(sale, 2).int(sharing, 2)
	for range 9 {
		w.int(0, 2)
	}
	w.int(0, 2).int(0, 2).int(0, 2).int(2, 2).int(2, 2).int(2, 2)
	return w.String()
}
