// Package archtest holds no code, only the test that keeps the layering
// ARCHITECTURE.md describes: the domain imports only the standard library,
// adapters never import each other, and the business logic never imports an
// adapter.
package archtest
