package ingest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/custos-cdp/custos/internal/cdp"
)

var (
	errUnsupportedType     = cdp.Reason(cdp.Unsupported, codeUnsupportedType, "Content-Type must be application/json or text/plain")
	errUnsupportedEncoding = cdp.Reason(cdp.Unsupported, codeUnsupportedEncoding, "Content-Encoding must be gzip or identity")
	errBodyTooLarge        = cdp.Reason(cdp.TooLarge, codeBodyTooLarge, "body larger than the limit for this endpoint")
	errMessageTooLarge     = cdp.Reason(cdp.TooLarge, codeMessageTooLarge, "message larger than the limit per message")
)

// contentHeaders checks that the body is JSON the endpoint can read and
// reports whether it is gzip-compressed. Browsers send beacons as
// text/plain (a type that needs no CORS preflight), so that counts as JSON.
func contentHeaders(r *http.Request) (gzipped bool, err error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
			return false, errUnsupportedType
		}
		isJSON := mt == "application/json" || mt == "text/plain" ||
			strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
		if !isJSON {
			return false, errUnsupportedType
		}
	}
	encodings := r.Header.Values("Content-Encoding")
	if len(encodings) > 1 {
		return false, errUnsupportedEncoding
	}
	if len(encodings) == 1 {
		switch strings.ToLower(strings.TrimSpace(encodings[0])) {
		case "", "identity":
		case "gzip", "x-gzip":
			return true, nil
		default:
			return false, errUnsupportedEncoding
		}
	}
	return false, nil
}

// compressedLimit bounds the bytes read off the wire for a gzip body whose
// inflated size may be max. Deflate adds at most a few bytes per 64 KiB
// block to data it cannot compress, so only a pathological encoder needs
// an eighth more than the limit to say something that inflates within it.
func compressedLimit(max int) int64 {
	return int64(max) + int64(max)/8 + 1024
}

// readBody reads the request body, inflating it when gzipped, and refuses
// it with tooLarge as soon as the inflated size passes max: no more than
// max+1 inflated bytes are ever produced, so a gzip bomb costs nothing.
// The caller returns the buffer with putBuffer once nothing aliases it.
func readBody(w http.ResponseWriter, r *http.Request, gzipped bool, max int, tooLarge *cdp.Error) (*bytes.Buffer, error) {
	wireMax := int64(max)
	if gzipped {
		wireMax = compressedLimit(max)
	}
	if r.ContentLength > wireMax {
		return nil, tooLarge
	}
	var src io.Reader = http.MaxBytesReader(w, r.Body, wireMax)
	buf := bufPool.Get().(*bytes.Buffer)
	if gzipped {
		zr, err := getGzipReader(src)
		if err != nil {
			putBuffer(buf)
			return nil, bodyError(err, true, tooLarge)
		}
		defer gzipPool.Put(zr)
		src = zr
	} else if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if err := readAtMost(buf, src, max); err != nil {
		putBuffer(buf)
		if errors.Is(err, errOverLimit) {
			return nil, tooLarge
		}
		return nil, bodyError(err, gzipped, tooLarge)
	}
	return buf, nil
}

var errOverLimit = errors.New("over the size limit")

// readAtMost reads src into buf and fails with errOverLimit once more than
// max bytes arrived. It never asks src for more than max+1 bytes.
func readAtMost(buf *bytes.Buffer, src io.Reader, max int) error {
	if _, err := buf.ReadFrom(io.LimitReader(src, int64(max)+1)); err != nil {
		return err
	}
	if buf.Len() > max {
		return errOverLimit
	}
	return nil
}

// bodyError classifies a failure to read the body.
func bodyError(err error, gzipped bool, tooLarge *cdp.Error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge
	}
	if gzipped && isGzipFormatError(err) {
		return cdp.Wrap(cdp.Invalid, codeInvalidGzip, err, "body is not valid gzip")
	}
	return cdp.Wrap(cdp.Invalid, codeUnreadableBody, err, "the request body could not be read")
}

func isGzipFormatError(err error) bool {
	if _, ok := errors.AsType[flate.CorruptInputError](err); ok {
		return true
	}
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// Request bodies and gzip readers are reused: decoded events copy what they
// keep, so a buffer is free again once its request is decoded.
var (
	bufPool  = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	gzipPool sync.Pool
)

// maxPooledBuffer keeps a rare large body from pinning its memory.
const maxPooledBuffer = 1 << 20

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

func getGzipReader(r io.Reader) (*gzip.Reader, error) {
	if zr, ok := gzipPool.Get().(*gzip.Reader); ok {
		if err := zr.Reset(r); err != nil {
			gzipPool.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(r)
}
