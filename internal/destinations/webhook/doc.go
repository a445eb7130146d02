// Package webhook delivers batches to an HTTP endpoint as signed JSON, for
// receivers that integrate Custos directly.
//
// # Credentials
//
//	{"secret": "..."}
//
// The secret is required, at least 16 characters: the key of the request
// signature. Other fields are refused.
//
// # Requests
//
// One POST per batch to the destination's endpoint (http or https), in the
// order of the queue:
//
//	POST <endpoint>
//	Content-Type: application/json
//	User-Agent: Custos/1 (+webhook)
//	X-Custos-Timestamp: 1764363332
//	X-Custos-Signature: v1=5d41402abc4b2a76b9719d911017c592...
//	Idempotency-Key: 9f86d081884c7d659a2feaa0c55ad015...
//
//	{"batch": [<delivery>, ...], "sent_at": "2026-11-28T20:55:32Z"}
//
// Each delivery is the public JSON of the admin API: "kind" is "event",
// "consent" or "erasure"; "idempotency_key" is the same for every attempt
// of that delivery and different for any other; "profile_id" and
// "identities" name the person; and exactly one of "event", "consent" and
// "erasure" holds the item. An erasure is sent like any other item: it is
// how a receiver learns that it must delete the person.
//
// # Guarantees
//
// The signature is "v1=" and the hex HMAC-SHA256, under the secret, of the
// timestamp header, a ".", and the raw body. A receiver checks it with
// Verify, which also refuses timestamps too far from its clock, so a
// captured request cannot be replayed later.
//
// Delivery is at least once: a batch that failed (no answer, 408, 429 or a
// 5xx) is sent again, in order, and nothing behind it is sent meanwhile.
// The Idempotency-Key header (the hex SHA-256 of the batch's delivery keys
// joined by "\n") is the same when the same batch is sent again, so a
// receiver can drop a batch it has already processed, or dedupe per item
// by idempotency_key. Any other 4xx is permanent: the router then sends the
// batch's deliveries one by one and dead-letters those still refused.
// Retry-After (seconds or a date) on 429 and 5xx is honoured.
package webhook
