package ingest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/httpjson"
)

var (
	errInvalidWriteKey     = cdp.Reason(cdp.Unauthenticated, codeInvalidWriteKey, "missing or unknown write key")
	errInvalidCredentials  = cdp.Reason(cdp.Unauthenticated, codeInvalidCredentials, "missing or unknown key and secret")
	errAllMessagesRejected = reject(codeAllMessagesRejected, "every message of the request was rejected; see rejected")
)

// segment serves one Segment endpoint; endpoint is "" for batch and import.
func (h *Handler) segment(endpoint cdp.EventType) http.HandlerFunc {
	maxBody, tooLarge := h.lim.SegmentMaxBatchBytes, errBodyTooLarge
	if endpoint != "" {
		maxBody, tooLarge = h.lim.SegmentMaxMessageBytes, errMessageTooLarge
	}
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := h.segmentRequest(w, r, endpoint, maxBody, tooLarge)
		if err == nil && len(req.Events) == 0 && len(req.Rejected) > 0 {
			err = errAllMessagesRejected
		}
		var consent []ConsentRejection
		if err == nil {
			consent, err = h.mapConsent(r.Context(), cdp.FormatSegment, req.Events, req.pos)
		}
		if err == nil {
			err = h.append(r.Context(), cdp.FormatSegment, req.Events)
		}
		if err != nil {
			h.fail(w, r, cdp.FormatSegment, err, req.Rejected)
			return
		}
		h.succeed(w, cdp.FormatSegment, http.StatusOK, segmentOK{Success: true, Rejected: req.Rejected, RejectedConsent: consent}, req.Rejected)
	}
}

type segmentOK struct {
	Success         bool               `json:"success"`
	Rejected        []Rejection        `json:"rejected,omitempty"`
	RejectedConsent []ConsentRejection `json:"rejected_consent,omitempty"`
}

// segmentRequest authenticates, reads and decodes a Segment request. A
// Basic header is checked before the body is read, so an unknown key costs
// no decoding; a key in the body is checked right after decoding, before
// any problem of the messages is answered, so that a caller without valid
// credentials learns only that.
func (h *Handler) segmentRequest(w http.ResponseWriter, r *http.Request, endpoint cdp.EventType, maxBody int, tooLarge *cdp.Error) (SegmentRequest, error) {
	gzipped, err := contentHeaders(r)
	if err != nil {
		return SegmentRequest{}, err
	}
	var src cdp.Source
	key, _, basic := r.BasicAuth()
	basic = basic && key != ""
	if basic {
		if src, err = h.sourceByWriteKey(r.Context(), key); err != nil {
			return SegmentRequest{}, err
		}
	}
	receivedAt := h.now()
	buf, err := readBody(w, r, gzipped, maxBody, tooLarge)
	if err != nil {
		return SegmentRequest{}, err
	}
	req, decodeErr := DecodeSegment(buf.Bytes(), endpoint, h.lim, receivedAt)
	putBuffer(buf)
	if !basic {
		if req.WriteKey == "" {
			// A body that could not be read might have held a key; one that
			// was read and had none is a request without credentials.
			if cdp.IsKind(decodeErr, cdp.TooLarge) || errors.Is(decodeErr, &cdp.Error{Kind: cdp.Invalid, Code: codeInvalidJSON}) {
				return SegmentRequest{}, decodeErr
			}
			return SegmentRequest{}, errInvalidWriteKey
		}
		if src, err = h.sourceByWriteKey(r.Context(), req.WriteKey); err != nil {
			return SegmentRequest{}, err
		}
	}
	if decodeErr != nil {
		return SegmentRequest{}, decodeErr
	}
	stamp(r, src, req.Events)
	return req, nil
}

func (h *Handler) sourceByWriteKey(ctx context.Context, key string) (cdp.Source, error) {
	src, err := h.auth.SourceByWriteKey(ctx, key)
	if cdp.IsKind(err, cdp.Unauthenticated) {
		return cdp.Source{}, errInvalidWriteKey
	}
	return src, err
}

// mparticle serves /v2/events, or with bulk /v2/bulkevents.
func (h *Handler) mparticle(bulk bool) http.HandlerFunc {
	maxBody := h.lim.MParticleMaxBatchBytes
	if bulk {
		maxBody = h.lim.MParticleMaxRequestBytes
	}
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := h.mparticleRequest(w, r, bulk, maxBody)
		if err == nil && len(req.Events) == 0 && len(req.Rejected) > 0 {
			err = errAllMessagesRejected
		}
		var consent []ConsentRejection
		if err == nil {
			consent, err = h.mapConsent(r.Context(), cdp.FormatMParticle, req.Events, req.pos)
		}
		if err == nil {
			err = h.append(r.Context(), cdp.FormatMParticle, req.Events)
		}
		if err != nil {
			h.fail(w, r, cdp.FormatMParticle, err, req.Rejected)
			return
		}
		h.succeed(w, cdp.FormatMParticle, http.StatusAccepted, mparticleOK{Rejected: req.Rejected, RejectedConsent: consent}, req.Rejected)
	}
}

type mparticleOK struct {
	Rejected        []Rejection        `json:"rejected,omitempty"`
	RejectedConsent []ConsentRejection `json:"rejected_consent,omitempty"`
}

func (h *Handler) mparticleRequest(w http.ResponseWriter, r *http.Request, bulk bool, maxBody int) (MParticleRequest, error) {
	gzipped, err := contentHeaders(r)
	if err != nil {
		return MParticleRequest{}, err
	}
	key, secret, ok := r.BasicAuth()
	if !ok {
		return MParticleRequest{}, errInvalidCredentials
	}
	src, err := h.auth.SourceByKeySecret(r.Context(), key, secret)
	if cdp.IsKind(err, cdp.Unauthenticated) {
		return MParticleRequest{}, errInvalidCredentials
	}
	if err != nil {
		return MParticleRequest{}, err
	}
	receivedAt := h.now()
	buf, err := readBody(w, r, gzipped, maxBody, errBodyTooLarge)
	if err != nil {
		return MParticleRequest{}, err
	}
	req, err := DecodeMParticle(buf.Bytes(), bulk, h.lim, receivedAt)
	putBuffer(buf)
	if err != nil {
		return MParticleRequest{}, err
	}
	stamp(r, src, req.Events)
	return req, nil
}

// stamp adds what only the request knows: the source, the GPC signal and,
// where the payload named no client address, the connection's. Only the
// exact value "1" of Sec-GPC is a GPC signal.
func stamp(r *http.Request, src cdp.Source, events []cdp.Event) {
	gpc := r.Header.Get("Sec-GPC") == "1"
	ip := remoteIP(r.RemoteAddr)
	for i := range events {
		ev := &events[i]
		ev.WorkspaceID, ev.SourceID, ev.GPC = src.WorkspaceID, src.ID, gpc
		if ev.IP == "" {
			ev.IP = ip
		}
	}
}

func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return clientIP(host)
}

// append hands the request's accepted events to the log in one call and
// returns once they are durable.
func (h *Handler) append(ctx context.Context, format cdp.Format, events []cdp.Event) error {
	if len(events) == 0 {
		return nil
	}
	start := time.Now()
	if err := h.log.Append(ctx, events); err != nil {
		return err
	}
	h.metrics.accepted(format, events, time.Since(start))
	return nil
}

func (h *Handler) succeed(w http.ResponseWriter, format cdp.Format, status int, body any, rejected []Rejection) {
	h.metrics.rejectedMessages(format, rejected)
	h.metrics.request(format, status)
	httpjson.Write(w, status, body)
}

// fail answers with err in the shape the format's clients read. mParticle
// clients read "errors"; Custos clients read "error"; both are sent.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, format cdp.Format, err error, rejected []Rejection) {
	status, detail := httpjson.Describe(r.Context(), h.logger, w, err)
	h.metrics.rejected(format, detail.Code)
	h.metrics.rejectedMessages(format, rejected)
	h.metrics.request(format, status)
	if format == cdp.FormatMParticle {
		httpjson.Write(w, status, mparticleError{
			Error:    detail,
			Errors:   []mparticleErrorItem{{Code: mparticleErrorCode(status), Message: detail.Message}},
			Rejected: rejected,
		})
		return
	}
	if len(rejected) == 0 {
		httpjson.Write(w, status, httpjson.ErrorBody{Error: detail})
		return
	}
	httpjson.Write(w, status, segmentError{Error: detail, Rejected: rejected})
}

type segmentError struct {
	Error    httpjson.ErrorDetail `json:"error"`
	Rejected []Rejection          `json:"rejected,omitempty"`
}

type mparticleError struct {
	Error    httpjson.ErrorDetail `json:"error"`
	Errors   []mparticleErrorItem `json:"errors"`
	Rejected []Rejection          `json:"rejected,omitempty"`
}

type mparticleErrorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// mparticleErrorCode is the code the mParticle Events API puts in errors.
func mparticleErrorCode(status int) string {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "UNAUTHORIZED"
	case status == http.StatusTooManyRequests:
		return "TOO_MANY_REQUESTS"
	case status == http.StatusServiceUnavailable:
		return "SERVICE_UNAVAILABLE"
	case status >= 500:
		return "INTERNAL_SERVER_ERROR"
	}
	return "BAD_REQUEST"
}
