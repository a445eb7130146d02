// Package identity decides how an event's identities map onto profiles:
// which profile the event belongs to, which new identities join it, and
// which profiles merge. The decision is a pure function of the workspace's
// rules and a snapshot of the identity graph; stores load the snapshot and
// carry out the plan in one transaction.
package identity
