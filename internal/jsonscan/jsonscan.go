// Package jsonscan validates JSON and splits objects and arrays into the
// raw bytes of their members in one pass, for decoders that read a few
// fields of a document and keep the rest as raw JSON. Its idea of valid
// JSON is that of encoding/json (a fuzz test holds them equal).
package jsonscan

import (
	"encoding/json"
	"unicode/utf8"
)

// The gateway reads every Segment message through this scanner instead of
// encoding/json: encoding/json validates a whole input before decoding it
// and then decodes it byte by byte through a state machine, so a message
// with a nested context cost four passes. The scanner validates and splits
// a value in one pass and hands out the raw bytes of each member, which the
// decoder keeps (copied) or reads as the few scalars it needs.

// maxJSONDepth is encoding/json's nesting limit, kept so that both decoders
// refuse the same inputs.
const maxJSONDepth = 10000

type jsonScanner struct {
	data []byte
	i    int
}

// Valid reports whether data is one JSON value with optional
// surrounding white space.
func Valid(data []byte) bool {
	s := jsonScanner{data: data}
	if !s.value(0) {
		return false
	}
	s.space()
	return s.i == len(data)
}

// EachMember validates the JSON object obj and calls fn with the raw key
// (quotes included) and raw value of each member, in document order. It
// reports false when obj is not a valid JSON object.
func EachMember(obj []byte, fn func(key, value []byte)) bool {
	s := jsonScanner{data: obj}
	s.space()
	if s.i >= len(obj) || obj[s.i] != '{' || !s.object(1, fn) {
		return false
	}
	s.space()
	return s.i == len(obj)
}

// EachElement is eachMember for the elements of a JSON array.
func EachElement(arr []byte, fn func(value []byte)) bool {
	s := jsonScanner{data: arr}
	s.space()
	if s.i >= len(arr) || arr[s.i] != '[' || !s.array(1, fn) {
		return false
	}
	s.space()
	return s.i == len(arr)
}

// FirstByte returns the first byte of b that is not JSON white space, or
// 0: what kind of value a raw value is.
func FirstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// Key returns the name of a raw key from eachMember. Keys with escapes
// or non-ASCII bytes are decoded as encoding/json would ("user\u0049d" is
// userId); plain ones are returned without a copy. Callers switch on
// string(Key(k)), which the compiler does without allocating.
func Key(raw []byte) []byte {
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			return []byte(Unquote(raw))
		}
	}
	return inner
}

func (s *jsonScanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) value(depth int) bool {
	s.space()
	if s.i >= len(s.data) {
		return false
	}
	switch c := s.data[s.i]; {
	case c == '{':
		return s.object(depth+1, nil)
	case c == '[':
		return s.array(depth+1, nil)
	case c == '"':
		return s.str()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

// object scans the object at s.i; fn, when not nil, sees each member.
func (s *jsonScanner) object(depth int, fn func(key, value []byte)) bool {
	if empty, ok := s.enter(depth, '}'); !ok || empty {
		return ok
	}
	for {
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return false
		}
		keyStart := s.i
		if !s.str() {
			return false
		}
		key := s.data[keyStart:s.i]
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return false
		}
		s.i++
		s.space()
		valueStart := s.i
		if !s.value(depth) {
			return false
		}
		if fn != nil {
			fn(key, s.data[valueStart:s.i])
		}
		if more, ok := s.after('}'); !more {
			return ok
		}
	}
}

// array scans the array at s.i; fn, when not nil, sees each element.
func (s *jsonScanner) array(depth int, fn func(value []byte)) bool {
	if empty, ok := s.enter(depth, ']'); !ok || empty {
		return ok
	}
	for {
		s.space()
		start := s.i
		if !s.value(depth) {
			return false
		}
		if fn != nil {
			fn(s.data[start:s.i])
		}
		if more, ok := s.after(']'); !more {
			return ok
		}
	}
}

// enter steps into the object or array at s.i, which closes with end;
// empty reports that it closes at once (and steps past it).
func (s *jsonScanner) enter(depth int, end byte) (empty, ok bool) {
	if depth > maxJSONDepth {
		return false, false
	}
	s.i++ // '{' or '['
	s.space()
	if s.i < len(s.data) && s.data[s.i] == end {
		s.i++
		return true, true
	}
	return false, true
}

// after steps past what follows a member or element: a comma (more) or
// the closing end (not more).
func (s *jsonScanner) after(end byte) (more, ok bool) {
	s.space()
	if s.i >= len(s.data) {
		return false, false
	}
	switch s.data[s.i] {
	case ',':
		s.i++
		return true, true
	case end:
		s.i++
		return false, true
	}
	return false, false
}

// plainInString marks the bytes a string may hold without a closer look:
// all but the quote, the backslash and control characters.
var plainInString = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *jsonScanner) str() bool {
	d := s.data
	i := s.i + 1 // '"'
	for i < len(d) {
		for i < len(d) && plainInString[d[i]] {
			i++
		}
		if i >= len(d) {
			return false
		}
		c := d[i]
		switch {
		case c == '"':
			s.i = i + 1
			return true
		case c == '\\':
			i++
			if i >= len(d) {
				return false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 > len(d) {
					return false
				}
				for _, h := range d[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				i += 5
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			i++
		}
	}
	return false
}

func (s *jsonScanner) literal(word string) bool {
	if len(s.data)-s.i < len(word) || string(s.data[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

func (s *jsonScanner) number() bool {
	d, i := s.data, s.i
	digits := func() bool {
		start := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > start
	}
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	s.i = i
	return true
}

// Unquote decodes a JSON string literal that the decoder has already
// validated. Most strings need no unescaping, so they are copied directly.
func Unquote(b []byte) string {
	inner := b[1 : len(b)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return string(inner)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return ""
	}
	return s
}
