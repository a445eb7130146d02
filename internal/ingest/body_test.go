package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
)

func TestContentHeaders(t *testing.T) {
	tests := []struct {
		name        string
		contentType []string
		encoding    []string
		wantGzip    bool
		wantCode    string
	}{
		{"nothing", nil, nil, false, ""},
		{"json", []string{"application/json"}, nil, false, ""},
		{"json upper case with params", []string{"Application/JSON; charset=utf-8"}, nil, false, ""},
		{"json with a broken parameter", []string{"application/json; charset"}, nil, false, ""},
		{"plus json", []string{"application/ld+json"}, nil, false, ""},
		{"text/plain", []string{"text/plain"}, nil, false, ""},
		{"text/html", []string{"text/html"}, nil, false, codeUnsupportedType},
		{"multipart", []string{"multipart/form-data; boundary=x"}, nil, false, codeUnsupportedType},
		{"json suffix on text", []string{"text/x+json"}, nil, false, codeUnsupportedType},
		{"gzip", nil, []string{"gzip"}, true, ""},
		{"gzip upper case", nil, []string{" GZIP "}, true, ""},
		{"identity", nil, []string{"identity"}, false, ""},
		{"deflate", nil, []string{"deflate"}, false, codeUnsupportedEncoding},
		{"gzip twice", nil, []string{"gzip", "gzip"}, false, codeUnsupportedEncoding},
		{"gzip listed with another", nil, []string{"gzip, br"}, false, codeUnsupportedEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tt.contentType != nil {
				r.Header["Content-Type"] = tt.contentType
			}
			if tt.encoding != nil {
				r.Header["Content-Encoding"] = tt.encoding
			}
			gz, err := contentHeaders(r)
			if tt.wantCode == "" {
				if err != nil || gz != tt.wantGzip {
					t.Errorf("got gzip %v, error %v; want gzip %v, no error", gz, err, tt.wantGzip)
				}
				return
			}
			assertCode(t, err, cdp.Unsupported, tt.wantCode)
		})
	}
}

// endless yields zeros forever and counts what it was asked for.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	clear(p)
	e.n += len(p)
	return len(p), nil
}

func TestReadAtMostStopsAtTheLimit(t *testing.T) {
	for _, max := range []int{0, 1, 100, 32 << 10, 500 << 10} {
		src := &endless{}
		var buf bytes.Buffer
		err := readAtMost(&buf, src, max)
		if !errors.Is(err, errOverLimit) {
			t.Errorf("max %d: got error %v, want errOverLimit", max, err)
		}
		if src.n != max+1 {
			t.Errorf("max %d: got %d bytes read, want exactly %d", max, src.n, max+1)
		}
	}
	var buf bytes.Buffer
	if err := readAtMost(&buf, strings.NewReader("12345"), 5); err != nil || buf.String() != "12345" {
		t.Errorf("got %q and error %v, want 12345 and none", buf.String(), err)
	}
}

func TestReadBody(t *testing.T) {
	const max = 1000
	plain := bytes.Repeat([]byte("a"), max)
	tests := []struct {
		name     string
		body     []byte
		gzipped  bool
		wantCode string
		wantLen  int
	}{
		{"at the limit", plain, false, "", max},
		{"over the limit", append(plain, 'a'), false, codeMessageTooLarge, 0},
		{"gzip at the limit", gzipBytes(t, plain), true, "", max},
		{"gzip inflating over the limit", gzipBytes(t, append(plain, 'a')), true, codeMessageTooLarge, 0},
		{"gzip truncated", gzipBytes(t, plain)[:20], true, codeInvalidGzip, 0},
		{"gzip with a bad checksum", func() []byte {
			b := gzipBytes(t, plain)
			b[len(b)-8] ^= 0xff
			return b
		}(), true, codeInvalidGzip, 0},
		{"gzip followed by garbage", append(gzipBytes(t, []byte("{}")), "garbage"...), true, codeInvalidGzip, 0},
		{"two gzip members", append(gzipBytes(t, []byte("[1,")), gzipBytes(t, []byte("2]"))...), true, "", 5},
		{"compressed size over the wire limit", func() []byte {
			// A gzip header may carry up to 64 KiB of "extra" bytes that
			// inflate to nothing; only the wire limit stops them.
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Extra = make([]byte, 2*compressedLimit(max))
			_, _ = zw.Write([]byte("{}"))
			_ = zw.Close()
			return b.Bytes()
		}(), true, codeMessageTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(bytes.NewReader(tt.body)))
			buf, err := readBody(httptest.NewRecorder(), r, tt.gzipped, max, errMessageTooLarge)
			if tt.wantCode != "" {
				e, ok := errors.AsType[*cdp.Error](err)
				if !ok || e.Code != tt.wantCode {
					t.Fatalf("got error %v, want code %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if buf.Len() != tt.wantLen {
				t.Errorf("got %d bytes, want %d", buf.Len(), tt.wantLen)
			}
			putBuffer(buf)
		})
	}
}
