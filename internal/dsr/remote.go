package dsr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/opendsr"
)

// Towards destinations that speak OpenDSR, Custos is the controller: it
// sends the erasure as an OpenDSR request, verifies every answer's signature
// with the processor's published certificate, and learns the outcome from
// the processor's signed status callbacks and, as a fallback, by asking.

// requestTypes maps Custos identity types back to OpenDSR identity types.
var requestTypes = map[cdp.IdentityType]string{
	cdp.UserID: "controller_customer_id", cdp.Email: "email", cdp.AndroidAAID: "android_advertising_id",
	cdp.AndroidID: "android_id", cdp.IOSIDFA: "ios_advertising_id", cdp.IOSIDFV: "ios_vendor_id",
}

// controllerRequest is the request sent to a destination's processor API:
// the person's identities it can know, and a callback URL back to Custos.
func (s *Service) controllerRequest(d cdp.DSR, dest cdp.Destination, ids []cdp.Identity) ([]byte, error) {
	req := opendsr.Request{APIVersion: opendsr.APIVersion, Regulation: d.Regulation, SubjectRequestID: d.ID,
		SubjectRequestType: string(cdp.DSRErasure), SubmittedTime: d.SubmittedAt,
		StatusCallbackURLs: []string{fmt.Sprintf("%s/opendsr/v1/callbacks/%s/%s/%s", s.cfg.BaseURL, d.WorkspaceID, dest.ID, d.ID)}}
	for _, id := range ids {
		t, ok := requestTypes[id.Type]
		if !ok {
			if name, custom := strings.CutPrefix(string(id.Type), cdp.CustomPrefix); custom {
				if _, known := opendsr.CustosType(name); known {
					t, ok = name, true
				}
			}
		}
		if ok {
			req.SubjectIdentities = append(req.SubjectIdentities, opendsr.SubjectIdentity{IdentityType: t, IdentityValue: id.Value, IdentityFormat: "raw"})
		}
	}
	return json.Marshal(req)
}

// driveRemote sends the request, or asks how it is going, when due.
func (s *Service) driveRemote(ctx context.Context, d cdp.DSR, destID cdp.DestinationID, do *destOutcome, r *remoteRequest) {
	if r == nil || s.cfg.Now().Before(r.NextAt) {
		return
	}
	dest, err := s.dests.Get(ctx, d.WorkspaceID, destID)
	if err != nil {
		do.State, do.Reason = string(cdp.DSRDestFailed), "destination deleted"
		return
	}
	base := strings.TrimSuffix(dest.Settings.OpenDSRURL, "/")
	token := s.token(ctx, dest)
	var rerr error
	switch cdp.DSRDestinationState(do.State) {
	case cdp.DSRDestPending:
		if r.Certificate == "" {
			r.Certificate, rerr = s.discover(ctx, base)
		}
		if rerr == nil {
			rerr = s.submitRemote(ctx, base, token, r)
		}
		if rerr == nil {
			do.State = string(cdp.DSRDestSent)
			r.NextAt = s.cfg.Now().Add(10 * time.Second)
			return
		}
	case cdp.DSRDestSent:
		var st opendsr.Status
		st, rerr = s.remoteStatus(ctx, base, token, r)
		if rerr == nil {
			s.applyRemoteStatus(do, st)
			r.NextAt = s.cfg.Now().Add(30 * time.Second)
			return
		}
	}
	r.Attempts++
	do.Reason = rerr.Error()
	if r.Attempts >= s.cfg.DestinationAttempts {
		do.State = string(cdp.DSRDestFailed)
		return
	}
	r.NextAt = s.cfg.Now().Add(backoff(r.Attempts))
}

func (s *Service) applyRemoteStatus(do *destOutcome, st opendsr.Status) {
	switch st.RequestStatus {
	case "completed":
		do.State, do.Reason = string(cdp.DSRDestConfirmed), ""
	case "cancelled":
		do.State, do.Reason = string(cdp.DSRDestFailed), "the processor cancelled the request"
	}
}

func (s *Service) token(ctx context.Context, dest cdp.Destination) string {
	if s.creds == nil {
		return ""
	}
	raw, err := s.creds.Open(ctx, dest)
	if err != nil {
		return ""
	}
	var c struct {
		Token string `json:"opendsr_token"`
	}
	_ = json.Unmarshal(raw, &c)
	return c.Token
}

// fetch does one request and returns the body; a signed answer is
// verified when cert is given.
func (s *Service) fetch(ctx context.Context, method, url, token string, body []byte, cert string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("invalid processor URL")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("processor unreachable (%s)", errClass(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading the processor's answer failed")
	}
	if cert != "" && resp.StatusCode < 300 {
		if err := opendsr.Verify([]byte(cert), resp.Header, b); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("the processor's answer is not signed by its certificate")
		}
	}
	return resp.StatusCode, b, nil
}

// discover reads the processor's discovery document and fetches the
// certificate it names.
func (s *Service) discover(ctx context.Context, base string) (string, error) {
	status, b, err := s.fetch(ctx, http.MethodGet, base+"/discovery", "", nil, "")
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("discovery answered %d", status)
	}
	var disc opendsr.Discovery
	if err := json.Unmarshal(b, &disc); err != nil || disc.ProcessorCertificate == "" {
		return "", fmt.Errorf("discovery names no processor certificate")
	}
	status, cert, err := s.fetch(ctx, http.MethodGet, disc.ProcessorCertificate, "", nil, "")
	if err != nil {
		return "", err
	}
	if status != http.StatusOK || !bytes.Contains(cert, []byte("BEGIN CERTIFICATE")) {
		return "", fmt.Errorf("processor certificate not available")
	}
	return string(cert), nil
}

func (s *Service) submitRemote(ctx context.Context, base, token string, r *remoteRequest) error {
	status, b, err := s.fetch(ctx, http.MethodPost, base+"/requests", token, r.Body, r.Certificate)
	if err != nil {
		return err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return fmt.Errorf("processor answered %d", status)
	}
	var rc opendsr.Receipt
	if err := json.Unmarshal(b, &rc); err != nil || rc.SubjectRequestID != r.RequestID {
		return fmt.Errorf("processor's receipt is not for this request")
	}
	return nil
}

func (s *Service) remoteStatus(ctx context.Context, base, token string, r *remoteRequest) (opendsr.Status, error) {
	status, b, err := s.fetch(ctx, http.MethodGet, base+"/requests/"+r.RequestID, token, nil, r.Certificate)
	if err != nil {
		return opendsr.Status{}, err
	}
	if status != http.StatusOK {
		return opendsr.Status{}, fmt.Errorf("processor answered %d", status)
	}
	var st opendsr.Status
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("processor's status is not JSON")
	}
	return st, nil
}

// RemoteCallback takes a processor's status callback for an erasure Custos
// sent: the body must be signed by the certificate Custos fetched for that
// processor. A completed status confirms the destination at once.
func (s *Service) RemoteCallback(ctx context.Context, ws cdp.WorkspaceID, dest cdp.DestinationID, requestID string, h http.Header, body []byte) error {
	d, err := s.store.Get(ctx, ws, requestID)
	if err != nil {
		return err
	}
	var o outcome
	_ = json.Unmarshal(d.Outcome, &o)
	r, do := o.Remote[string(dest)], o.Destinations[string(dest)]
	if r == nil || do == nil || r.Certificate == "" {
		return cdp.Errorf(cdp.NotFound, "no request was sent to this destination")
	}
	if err := opendsr.Verify([]byte(r.Certificate), h, body); err != nil {
		return err
	}
	var st opendsr.Status
	if err := json.Unmarshal(body, &st); err != nil || st.SubjectRequestID != requestID {
		return cdp.Reason(cdp.Invalid, "invalid_callback", "the callback is not a status of this request")
	}
	if d.Status == cdp.DSRInProgress {
		s.applyRemoteStatus(do, st)
		s.saveOutcome(ctx, d, &o)
		s.wakeUp()
	}
	return nil
}
