package opendsr

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

func day(y int, m time.Month, d, hour int) time.Time {
	return time.Date(y, m, d, hour, 0, 0, 0, time.UTC)
}

func TestComputeDeadlinesGDPR(t *testing.T) {
	tests := []struct {
		name     string
		received time.Time
		want     time.Time
	}{
		{"15 Jan to 15 Feb", day(2027, 1, 15, 10), day(2027, 2, 15, 10)},
		{"31 Jan to 28 Feb", day(2027, 1, 31, 10), day(2027, 2, 28, 10)},
		{"31 Jan to 29 Feb in a leap year", day(2028, 1, 31, 10), day(2028, 2, 29, 10)},
		{"30 Nov to 30 Dec", day(2027, 11, 30, 10), day(2027, 12, 30, 10)},
		{"31 Mar to 30 Apr", day(2027, 3, 31, 10), day(2027, 4, 30, 10)},
		{"31 Dec to 31 Jan", day(2027, 12, 31, 23), day(2028, 1, 31, 23)},
		{"offset and fraction read as UTC seconds", time.Date(2027, 1, 15, 1, 30, 0, 999, time.FixedZone("CET", 3600)), day(2027, 2, 15, 0).Add(30 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ComputeDeadlines("gdpr", tt.received)
			if !d.Respond.Equal(tt.want) || d.Respond.Location() != time.UTC {
				t.Errorf("got respond %v, want %v", d.Respond, tt.want)
			}
			if !d.Acknowledge.IsZero() {
				t.Errorf("got acknowledge %v, want none under the GDPR", d.Acknowledge)
			}
			if !d.Due().Equal(tt.want) {
				t.Errorf("got due %v, want %v", d.Due(), tt.want)
			}
			if want := tt.received.UTC().Truncate(time.Second); !d.Received.Equal(want) {
				t.Errorf("got received %v, want %v", d.Received, want)
			}
		})
	}
}

func TestComputeDeadlinesCCPA(t *testing.T) {
	// 5 March 2027 is a Friday.
	tests := []struct {
		name            string
		received        time.Time
		wantAcknowledge time.Time
		wantRespond     time.Time
	}{
		{"Friday to the Friday two weeks on", day(2027, 3, 5, 9), day(2027, 3, 19, 9), day(2027, 4, 19, 9)},
		{"Saturday counts from Monday", day(2027, 3, 6, 9), day(2027, 3, 19, 9), day(2027, 4, 20, 9)},
		{"Sunday counts from Monday", day(2027, 3, 7, 9), day(2027, 3, 19, 9), day(2027, 4, 21, 9)},
		{"Monday to the Monday two weeks on", day(2027, 3, 8, 9), day(2027, 3, 22, 9), day(2027, 4, 22, 9)},
		{"Wednesday across a month end", day(2027, 3, 24, 9), day(2027, 4, 7, 9), day(2027, 5, 8, 9)},
		{"45 days across a year end", day(2027, 12, 1, 9), day(2027, 12, 15, 9), day(2028, 1, 15, 9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ComputeDeadlines("ccpa", tt.received)
			if !d.Acknowledge.Equal(tt.wantAcknowledge) {
				t.Errorf("got acknowledge %v (%s), want %v (%s)", d.Acknowledge, d.Acknowledge.Weekday(), tt.wantAcknowledge, tt.wantAcknowledge.Weekday())
			}
			if !d.Respond.Equal(tt.wantRespond) {
				t.Errorf("got respond %v, want %v", d.Respond, tt.wantRespond)
			}
		})
	}
}

func TestComputeDeadlinesUnknownRegulationIsStrictest(t *testing.T) {
	received := day(2027, 3, 5, 9)
	d := ComputeDeadlines("lgpd", received)
	gdpr, ccpa := ComputeDeadlines("gdpr", received), ComputeDeadlines("ccpa", received)
	if !d.Respond.Equal(gdpr.Respond) || !d.Acknowledge.Equal(ccpa.Acknowledge) {
		t.Errorf("got respond %v acknowledge %v, want %v and %v", d.Respond, d.Acknowledge, gdpr.Respond, ccpa.Acknowledge)
	}
}

func TestExtend(t *testing.T) {
	tests := []struct {
		name       string
		regulation string
		received   time.Time
		notice     time.Time
		want       time.Time
	}{
		{"GDPR three months from receipt", "gdpr", day(2027, 1, 15, 10), day(2027, 2, 1, 0), day(2027, 4, 15, 10)},
		{"GDPR from receipt, not from the first deadline", "gdpr", day(2027, 1, 31, 10), day(2027, 2, 10, 0), day(2027, 4, 30, 10)},
		{"GDPR month end in a leap year", "gdpr", day(2027, 11, 30, 10), day(2027, 12, 1, 0), day(2028, 2, 29, 10)},
		{"GDPR notice at the last moment", "gdpr", day(2027, 1, 15, 10), day(2027, 2, 15, 10), day(2027, 4, 15, 10)},
		{"CCPA to 90 days", "ccpa", day(2027, 3, 1, 9), day(2027, 4, 1, 0), day(2027, 5, 30, 9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ComputeDeadlines(tt.regulation, tt.received)
			ext, err := d.Extend(tt.regulation, " complex request ", tt.notice)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if !ext.Extended || !ext.ExtendedRespond.Equal(tt.want) || !ext.Due().Equal(tt.want) {
				t.Errorf("got extended %v to %v (due %v), want true to %v", ext.Extended, ext.ExtendedRespond, ext.Due(), tt.want)
			}
			if ext.ExtensionReason != "complex request" || !ext.NoticeSent.Equal(tt.notice) {
				t.Errorf("got reason %q notice %v, want %q %v", ext.ExtensionReason, ext.NoticeSent, "complex request", tt.notice)
			}
			if !ext.Respond.Equal(d.Respond) {
				t.Errorf("got original deadline %v, want it kept at %v", ext.Respond, d.Respond)
			}
			if d.Extended {
				t.Error("got the receiver changed, want it untouched")
			}
		})
	}
}

func TestExtendRefused(t *testing.T) {
	gdpr := ComputeDeadlines("gdpr", day(2027, 1, 15, 10))
	ccpa := ComputeDeadlines("ccpa", day(2027, 3, 1, 9))
	extended, err := gdpr.Extend("gdpr", "complex", day(2027, 1, 20, 0))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		d          Deadlines
		regulation string
		reason     string
		notice     time.Time
		wantKind   cdp.Kind
		wantCode   string
	}{
		{"GDPR notice after the first month", gdpr, "gdpr", "complex", day(2027, 2, 15, 10).Add(time.Second), cdp.Invalid, "extension_too_late"},
		{"CCPA notice after 45 days", ccpa, "ccpa", "complex", day(2027, 4, 16, 0), cdp.Invalid, "extension_too_late"},
		{"second extension", extended, "gdpr", "more", day(2027, 1, 21, 0), cdp.Conflict, "already_extended"},
		{"no reason", gdpr, "gdpr", "  ", day(2027, 1, 20, 0), cdp.Invalid, "missing_reason"},
		{"no notice", gdpr, "gdpr", "complex", time.Time{}, cdp.Invalid, "missing_notice"},
		{"notice before receipt", gdpr, "gdpr", "complex", day(2027, 1, 14, 0), cdp.Invalid, "invalid_notice"},
		{"unknown regulation", gdpr, "lgpd", "complex", day(2027, 1, 20, 0), cdp.Invalid, "invalid_regulation"},
		{"never computed", Deadlines{}, "gdpr", "complex", day(2027, 1, 20, 0), cdp.Invalid, "no_deadlines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.Extend(tt.regulation, tt.reason, tt.notice)
			if !errors.Is(err, &cdp.Error{Kind: tt.wantKind, Code: tt.wantCode}) {
				t.Fatalf("got %v (kind %v), want %v %s", err, cdp.ErrorKind(err), tt.wantKind, tt.wantCode)
			}
			if got.Extended != tt.d.Extended || !got.Due().Equal(tt.d.Due()) {
				t.Errorf("got deadlines %+v with the error, want them unchanged %+v", got, tt.d)
			}
		})
	}
}

func TestUrgency(t *testing.T) {
	// 1 March to 1 April 2027: 31 days, so due soon in the last 7 days 18 hours.
	gdpr := ComputeDeadlines("gdpr", day(2027, 3, 1, 0))
	window := 31 * 24 * time.Hour / 4
	extended, err := gdpr.Extend("gdpr", "complex", day(2027, 3, 2, 0))
	if err != nil {
		t.Fatal(err)
	}
	short := Deadlines{Received: day(2027, 3, 1, 0), Respond: day(2027, 3, 9, 0)} // 8 days: the 3-day floor applies
	tests := []struct {
		name string
		d    Deadlines
		now  time.Time
		want string
	}{
		{"at receipt", gdpr, day(2027, 3, 1, 0), "on_track"},
		{"just before the window", gdpr, day(2027, 4, 1, 0).Add(-window), "on_track"},
		{"inside the window", gdpr, day(2027, 4, 1, 0).Add(-window + time.Second), "due_soon"},
		{"at the deadline", gdpr, day(2027, 4, 1, 0), "due_soon"},
		{"past the deadline", gdpr, day(2027, 4, 1, 0).Add(time.Second), "overdue"},
		{"extension in force", extended, day(2027, 4, 2, 0), "on_track"},
		{"extension due soon", extended, day(2027, 5, 25, 0), "due_soon"},
		{"extension overdue", extended, day(2027, 6, 1, 0).Add(time.Second), "overdue"},
		{"three-day floor: 4 days left", short, day(2027, 3, 5, 0), "on_track"},
		{"three-day floor: under 3 days left", short, day(2027, 3, 6, 1), "due_soon"},
		{"never computed", Deadlines{}, day(2027, 3, 1, 0), "overdue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Urgency(tt.now); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDeadlinesJSON(t *testing.T) {
	tests := []struct {
		name       string
		d          Deadlines
		wantKeys   []string
		absentKeys []string
	}{
		{"GDPR", ComputeDeadlines("gdpr", day(2027, 1, 15, 10)), []string{`"received"`, `"respond"`},
			[]string{`"acknowledge"`, `"extended"`, `"extended_respond"`, `"notice_sent"`, `"extension_reason"`}},
		{"CCPA extended", mustExtend(t, ComputeDeadlines("ccpa", day(2027, 3, 1, 9)), "ccpa"),
			[]string{`"acknowledge"`, `"extended":true`, `"extended_respond"`, `"notice_sent"`, `"extension_reason"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.wantKeys {
				if !strings.Contains(string(b), k) {
					t.Errorf("got %s, want %s in it", b, k)
				}
			}
			for _, k := range tt.absentKeys {
				if strings.Contains(string(b), k) {
					t.Errorf("got %s, want no %s in it", b, k)
				}
			}
			var back Deadlines
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !back.Due().Equal(tt.d.Due()) || back.Extended != tt.d.Extended || !back.Received.Equal(tt.d.Received) ||
				!back.Acknowledge.Equal(tt.d.Acknowledge) || back.ExtensionReason != tt.d.ExtensionReason {
				t.Errorf("got %+v after a round trip, want %+v", back, tt.d)
			}
		})
	}
}

func mustExtend(t *testing.T, d Deadlines, regulation string) Deadlines {
	t.Helper()
	ext, err := d.Extend(regulation, "complex", d.Received.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return ext
}
