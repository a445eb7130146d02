package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	tests := []string{
		``, ` `, `{}`, ` {} `, `[]`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1}{}`,
		`"x"`, `"\u00e9\n\/"`, `"\x"`, `"\u12"`, "\"tab\there\"", `"` + "\xff\xfe" + `"`,
		`0`, `-0`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`, `1E-7`, `-12.5e10`, `1.5.5`,
		`true`, `tru`, `truex`, `null`, `nul`, `false `, `[true,false,null]`,
		`{"a":[{"b":{"c":[1,2,{"d":"e"}]}}]}`, `[[[]]]`, `[[[]]`, `{"a":{"b":}}`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		`{"a":` + strings.Repeat(`{"a":`, 9999) + `1` + strings.Repeat("}", 10000),
	}
	for _, in := range tests {
		name := in
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		t.Run(name, func(t *testing.T) {
			if got, want := Valid([]byte(in)), json.Valid([]byte(in)); got != want {
				t.Errorf("got valid %v, want %v", got, want)
			}
		})
	}
}

func TestEachMember(t *testing.T) {
	var keys, values []string
	ok := EachMember([]byte(` {"a" : 1 , "b\u0063":{"x":[1,2]},"a":"s"} `), func(k, v []byte) {
		keys = append(keys, string(Key(k)))
		values = append(values, string(v))
	})
	if !ok {
		t.Fatal("got invalid, want a valid object")
	}
	if got, want := strings.Join(keys, ","), "a,bc,a"; got != want {
		t.Errorf("got keys %s, want %s", got, want)
	}
	if got, want := strings.Join(values, " "), `1 {"x":[1,2]} "s"`; got != want {
		t.Errorf("got values %s, want %s", got, want)
	}
	for _, bad := range []string{`[]`, `{"a":1`, `{"a":1} x`, `"a"`} {
		if EachMember([]byte(bad), func(k, v []byte) {}) {
			t.Errorf("%s: got valid object, want invalid", bad)
		}
	}
}

// FuzzJSONScanner holds the scanner to encoding/json's idea of valid JSON
// and of an object's members.
func FuzzJSONScanner(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":null}],"c\u0041":"\ud83d\ude00","d":-1.5e3}`))
	f.Add([]byte(`{"type":"track","userId":"user-1001","event":"Order Completed","properties":{"revenue":42.5,"items":[{"sku":"a-1"}]},"context":{"ip":"203.0.113.9","library":{"name":"analytics-go"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := Valid(data)
		if want := json.Valid(data); valid != want {
			t.Fatalf("validJSON %q: got %v, want %v", data, valid, want)
		}
		if !valid || FirstByte(data) != '{' {
			return
		}
		type member struct {
			key   string
			value string
		}
		var got []member
		EachMember(data, func(k, v []byte) { got = append(got, member{string(Key(k)), string(v)}) })

		dec := json.NewDecoder(bytes.NewReader(data))
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		for i := 0; dec.More(); i++ {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			if i >= len(got) || got[i].key != tok.(string) || got[i].value != string(v) {
				t.Fatalf("member %d: got %+v, want key %q value %s", i, got, tok, v)
			}
		}
	})
}
