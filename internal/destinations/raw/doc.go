// Package raw delivers full envelopes, consent change records and erasures
// as JSON Lines, to an HTTP endpoint (a queue's or data lake's ingestion
// URL) or to files in a directory, for data lakes and pipelines that want
// everything Custos knows about each item.
//
// # Items
//
// Each line is one delivery, compact JSON, in the order of the queue:
//
//	{"kind":"event","idempotency_key":"...","profile_id":"...","identities":[...],"raw_event":{...}}
//	{"kind":"consent","idempotency_key":"...","profile_id":"...","identities":[...],"consent":{...}}
//	{"kind":"erasure","idempotency_key":"...","profile_id":"...","identities":[...],"erasure":{...}}
//
// An event is its full envelope (raw_event): the public event plus its wire
// format, the client's own clocks, its integrations switches, deleted
// traits, the GPC flag and the consent signals it carried. A consent change
// is the change record; an erasure asks the consumer to delete the person.
//
// # HTTP endpoints
//
// For an http:// or https:// endpoint, each batch is one POST:
//
//	POST <endpoint>
//	Content-Type: application/x-ndjson
//	User-Agent: Custos/1 (+raw)
//	X-Custos-Timestamp: 1764363332
//	X-Custos-Signature: v1=...      (only with a secret)
//	Idempotency-Key: ...
//
// Credentials are optional:
//
//	{"secret": "..."}
//
// With a secret (at least 16 characters) the request is signed exactly as
// a webhook's: "v1=" and the hex HMAC-SHA256, under the secret, of the
// timestamp header, a "." and the raw body; webhook.Verify checks it. The
// Idempotency-Key is the hex SHA-256 of the batch's delivery keys joined
// by "\n", the same when a batch is sent again. No answer, 408, 429 and
// 5xx are retried (honouring Retry-After); other 4xx are permanent.
//
// # Directories
//
// For an endpoint file:///absolute/dir each batch becomes a new file
//
//	custos-<destination id>-<yyyymmddThhmmss.nnnnnnnnnZ>-<8 hex>.jsonl
//
// named by the UTC time it was written. The file is written under a
// temporary name starting with "." in the same directory, synced, then
// renamed and the directory synced: a file under its final name is always
// complete, even after a crash. Files are created 0600 and the directory,
// when missing, 0700. No credentials are needed.
//
// # Guarantees
//
// Delivery is at least once. A batch that failed is sent again, and one
// that in fact arrived (or was written) before the failure arrives twice:
// for directories, the same items appear in a second file. Consumers
// dedupe by idempotency_key, which is the same for every attempt of a
// delivery and different for any other.
package raw
