// Package consent holds the consent rules, in one place: how a person's
// current state per purpose is derived from their append-only ledger, how
// ledgers combine when profiles merge, and whether a person's data may go
// to a consumer that requires some purposes at a given moment. It is pure:
// stores load ledgers and purposes, this package decides.
package consent
