// Package vault holds Custos's key hierarchy and the encryption of personal
// data at rest.
//
//	root key (a Tink AES-256-GCM keyset in a file, never in the database)
//	  └─ per workspace: master keyset (Tink, rotatable) and blind-index key,
//	     stored in the database encrypted under the root key
//	       └─ per person: a random AES-256-GCM data key, stored wrapped by
//	          the workspace master keyset
//
// Personal data is sealed with the person's data key. Destroying that key
// (deleting its wrapped copy) makes every copy of the data unreadable:
// rows, backups, old ciphertext. Lookups by identity use a blind index, a
// keyed hash, so the database never needs the plaintext to find a person.
package vault
