// Package auth checks the credentials of everything that talks to Custos:
// sources (write keys and key:secret pairs) and admin API tokens. Secrets are
// generated here, stored only as hashes, and compared in constant time.
package auth
