// Package api is the JSON admin API under /api/v1: what operators and their
// scripts use to read and manage a workspace. Every route takes a bearer
// token and sees only the token's workspace.
package api
