// Package segment delivers events to any endpoint that speaks the Segment
// tracking API: Segment itself (https://api.segment.io), RudderStack
// (https://hosted.rudderlabs.com or a data plane URL), or another Custos
// (http://host:8080).
//
// # Credentials
//
//	{"write_key": "..."}
//
// The write key is required. It is sent as the user name of HTTP Basic
// authentication, with an empty password. Other fields are refused.
//
// # Requests
//
// The endpoint is the service's base URL; requests go to <endpoint>/v1/batch
// (an endpoint that already ends in /v1/batch is used as it is):
//
//	POST <endpoint>/v1/batch
//	Authorization: Basic base64("<write key>:")
//	Content-Type: application/json
//	User-Agent: Custos/1 (+segment)
//
//	{"batch": [<message>, ...], "sentAt": "2026-11-28T20:55:32.5Z"}
//
// An event becomes one message of the tracking spec:
//
//   - type: identify, track, page, screen, group or alias
//   - messageId: the event's own message id, so a batch sent again is
//     deduplicated by the receiver
//   - userId and anonymousId: the event's user_id and anonymous_id
//     identities; when it carries neither, the person's (as the destination
//     may see them); when there are none, anonymousId is the Custos profile
//     id, since every message needs one of the two
//   - event (track), name (page, screen), properties (track, page, screen),
//     traits (identify, group), groupId (group), previousId (alias)
//   - context: the event's context, with ip added from the request's
//     address when the context has none (and the destination does not
//     drop IP addresses)
//   - integrations, when the event carried them
//   - timestamp: when the event happened, RFC 3339 with nanoseconds
//
// A change of a person's consent becomes a track message:
//
//	{"type": "track", "event": "Consent Updated", "messageId": "<delivery key>",
//	 "userId": "...", "anonymousId": "...", "timestamp": "<collected_at>",
//	 "properties": {"purpose": "marketing", "old_state": "granted",
//	   "new_state": "withdrawn", "entry_id": "...", "source": "server",
//	   "document": "privacy-v3", "collected_at": "..."}}
//
// with the person's user and anonymous ids (or the profile id as
// anonymousId). document is left out when the change cites none.
//
// Erasures are not sent: the tracking spec has no deletion call. They
// count as delivered; erase people in these tools through their own
// deletion APIs or an OpenDSR request, which Custos's data subject requests
// can drive.
//
// # Guarantees
//
// Messages stay within the spec's limits: a message over 32,000 bytes is
// refused for good (the error names its message id, and the router
// dead-letters that delivery alone), and a batch is split into several
// requests of at most 500,000 bytes, sent in order. Delivery is at least
// once: after a failure (no answer, 408, 429, a 5xx) the whole batch is
// sent again, and receivers drop the repeated messages by messageId. Any
// other 4xx is permanent.
package segment
