package opendsr

import (
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Deadlines are the legal deadlines of one request, computed at receipt.
// They are stored as JSON with the request and shown to operators, hence
// the tags. All times are UTC.
type Deadlines struct {
	// Received is the moment of receipt, to the second, from which every
	// period runs.
	Received time.Time `json:"received"`
	// Acknowledge is when receipt must have been confirmed to the person
	// (CCPA); zero under the GDPR, which sets no such deadline.
	Acknowledge time.Time `json:"acknowledge,omitzero"`
	// Respond is when the request must have been answered, without an
	// extension.
	Respond time.Time `json:"respond"`
	// Extended, ExtendedRespond, ExtensionReason and NoticeSent record the
	// one extension the law allows: the new deadline, why, and when the
	// person was told.
	Extended        bool      `json:"extended,omitempty"`
	ExtendedRespond time.Time `json:"extended_respond,omitzero"`
	ExtensionReason string    `json:"extension_reason,omitempty"`
	NoticeSent      time.Time `json:"notice_sent,omitzero"`
}

// The urgency of an open request, from Deadlines.Urgency.
const (
	UrgencyOnTrack = "on_track"
	UrgencyDueSoon = "due_soon"
	UrgencyOverdue = "overdue"
)

// DueSoonMin is the least time left at which a request is still on track;
// see Deadlines.Urgency.
const DueSoonMin = 3 * 24 * time.Hour

// ComputeDeadlines returns the deadlines of a request of regulation received
// at received.
//
// GDPR Art. 12(3): answer within one calendar month, that is by the same
// date in the next month, or that month's last day when it has no such date
// (31 January -> 28 or 29 February); no acknowledgement deadline.
// CCPA (Cal. Civ. Code 1798.130, 11 CCR 7021): confirm receipt within 10
// business days (Monday to Friday, public holidays not counted out) and
// answer within 45 calendar days.
//
// Every deadline keeps the clock time of receipt. An unknown regulation gets
// the stricter of each rule (the GDPR month, the CCPA acknowledgement), so a
// mistake never grants more time than the law.
func ComputeDeadlines(regulation string, received time.Time) Deadlines {
	r := received.UTC().Truncate(time.Second)
	d := Deadlines{Received: r}
	switch strings.ToLower(regulation) {
	case RegulationGDPR:
		d.Respond = addMonths(r, 1)
	case RegulationCCPA:
		d.Acknowledge = addBusinessDays(r, 10)
		d.Respond = r.AddDate(0, 0, 45)
	default:
		d.Acknowledge = addBusinessDays(r, 10)
		d.Respond = addMonths(r, 1)
	}
	return d
}

// Extend applies the one extension the law allows and returns the new
// deadlines; d is unchanged.
//
// GDPR: to three calendar months from receipt (same month-end rule), if the
// person was told, with reasons, within the first month. CCPA: to 90 days
// from receipt, if the person was told within the first 45.
//
// Errors: Conflict "already_extended" when d was extended before; Invalid
// "missing_reason" without a reason, "missing_notice" without the date the
// person was told, "invalid_notice" for a notice before receipt,
// "extension_too_late" for a notice after the original deadline,
// "invalid_regulation" for a regulation that allows no extension, and
// "no_deadlines" when d was never computed.
func (d Deadlines) Extend(regulation, reason string, notice time.Time) (Deadlines, error) {
	if d.Extended {
		return d, cdp.Reason(cdp.Conflict, "already_extended", "the deadline was already extended once; the law allows one extension")
	}
	if d.Received.IsZero() || d.Respond.IsZero() {
		return d, cdp.Reason(cdp.Invalid, "no_deadlines", "the request has no computed deadlines")
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return d, cdp.Reason(cdp.Invalid, "missing_reason", "an extension needs the reason the person was given")
	}
	if notice.IsZero() {
		return d, cdp.Reason(cdp.Invalid, "missing_notice", "an extension needs the date the person was told")
	}
	notice = notice.UTC()
	if notice.Before(d.Received) {
		return d, cdp.Reason(cdp.Invalid, "invalid_notice", "the person cannot have been told of an extension before the request was received")
	}
	if notice.After(d.Respond) {
		return d, cdp.Reason(cdp.Invalid, "extension_too_late", "the person must be told of an extension before the original deadline")
	}
	var extended time.Time
	switch strings.ToLower(regulation) {
	case RegulationGDPR:
		extended = addMonths(d.Received, 3)
	case RegulationCCPA:
		extended = d.Received.AddDate(0, 0, 90)
	default:
		return d, cdp.Reason(cdp.Invalid, "invalid_regulation", "regulation must be gdpr or ccpa")
	}
	d.Extended, d.ExtendedRespond, d.ExtensionReason, d.NoticeSent = true, extended, reason, notice
	return d, nil
}

// Due returns the deadline in force: the extended one once extended.
func (d Deadlines) Due() time.Time {
	if d.Extended {
		return d.ExtendedRespond
	}
	return d.Respond
}

// Urgency says how an open request stands at now against the deadline in
// force: "overdue" once now is past it; "due_soon" when less is left than a
// quarter of the whole period (receipt to deadline) or DueSoonMin, whichever
// is longer; "on_track" otherwise. For a GDPR month that is about the last
// 7 or 8 days, for 45 CCPA days the last 11 and a quarter. Deadlines never
// computed (zero) read as overdue, so they are looked at.
func (d Deadlines) Urgency(now time.Time) string {
	due := d.Due()
	if now.After(due) {
		return UrgencyOverdue
	}
	window := max(due.Sub(d.Received)/4, DueSoonMin)
	if due.Sub(now) < window {
		return UrgencyDueSoon
	}
	return UrgencyOnTrack
}

// addMonths returns t moved n calendar months on: the same date, or the
// last day of the target month when it has no such date. Clock time is kept.
func addMonths(t time.Time, n int) time.Time {
	y, m, day := t.Date()
	last := time.Date(y, m+time.Month(n)+1, 0, 0, 0, 0, 0, t.Location()).Day()
	return time.Date(y, m+time.Month(n), min(day, last), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

// addBusinessDays returns t moved n working days (Monday to Friday) on,
// counting from the day after t. Clock time is kept.
func addBusinessDays(t time.Time, n int) time.Time {
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	return t
}
