// Package ingest is the gateway's HTTP surface: it speaks the Segment
// tracking spec and the mParticle Events API v2, authenticates the source,
// enforces size limits, turns every accepted message into a cdp.Event and
// answers the client only after the event log has made those events durable.
//
// The wire formats end here. Nothing outside this package sees a Segment or
// mParticle payload; every later stage reads cdp.Event. Error messages and
// metric labels name fields and fixed reason codes, never payload content,
// because payloads carry personal data.
package ingest
