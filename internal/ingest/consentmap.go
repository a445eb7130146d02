package ingest

import (
	"context"

	"github.com/custos-cdp/custos/internal/cdp"
)

// ConsentMapper maps the consent signals an event carried onto the
// workspace's purposes: it returns the signals that map (each with its
// Purpose set; IAB strings expanded into one signal per purpose) and says
// why each other one was not used.
type ConsentMapper interface {
	MapConsent(ctx context.Context, ws cdp.WorkspaceID, signals []cdp.ConsentSignal) ([]cdp.ConsentSignal, []ConsentProblem, error)
}

// ConsentProblem is one carried consent signal that was not used.
type ConsentProblem struct {
	Vocabulary string
	Key        string // the external name; never an IAB string itself
	Reason     string // "unmapped", "undefined_purpose", "retired_purpose", "invalid_tcf", "invalid_gpp"
	Detail     string
}

// ConsentRejection reports, in an answer, consent of an accepted message
// that was not recorded: the rest of the message was accepted.
type ConsentRejection struct {
	Index      *int   `json:"index,omitempty"`
	BatchIndex *int   `json:"batch_index,omitempty"`
	MessageID  string `json:"message_id"`
	Vocabulary string `json:"vocabulary"`
	Key        string `json:"key,omitempty"`
	Code       string `json:"code"`
	Message    string `json:"message"`
}

// eventPos is where an event came from in its request: the message's index
// (nil for an mParticle batch's own identify event) and, in an mParticle
// bulk request, the batch's.
type eventPos struct {
	index, batch *int
}

func intp(i int) *int { return &i }

var consentMessages = map[string]string{
	"unmapped":          "no purpose of this workspace is mapped to this consent name",
	"undefined_purpose": "the consent maps to a purpose this workspace does not define",
	"retired_purpose":   "the consent maps to a retired purpose",
	"invalid_tcf":       "the TCF string is malformed and was not recorded",
	"invalid_gpp":       "the GPP string is malformed and was not recorded",
}

// mapConsent replaces each event's carried signals with the mapped ones and
// reports the rest. Without a mapper (in unit tests) signals pass as they
// are.
func (h *Handler) mapConsent(ctx context.Context, format cdp.Format, events []cdp.Event, pos []eventPos) ([]ConsentRejection, error) {
	if h.consent == nil {
		return nil, nil
	}
	var out []ConsentRejection
	for i := range events {
		ev := &events[i]
		if len(ev.Consent) == 0 {
			continue
		}
		mapped, problems, err := h.consent.MapConsent(ctx, ev.WorkspaceID, ev.Consent)
		if err != nil {
			return nil, err
		}
		ev.Consent = mapped
		for _, p := range problems {
			r := ConsentRejection{MessageID: ev.MessageID, Vocabulary: p.Vocabulary, Key: p.Key, Code: p.Reason, Message: consentMessages[p.Reason]}
			if r.Message == "" {
				r.Message = "consent not recorded"
			}
			if p.Detail != "" {
				r.Message += " (" + p.Detail + ")"
			}
			if i < len(pos) {
				r.Index, r.BatchIndex = pos[i].index, pos[i].batch
			}
			out = append(out, r)
			h.metrics.rejectedConsent(format, p.Reason)
		}
	}
	return out, nil
}
