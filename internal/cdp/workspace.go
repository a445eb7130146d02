package cdp

import "time"

// WorkspaceID identifies a workspace: one brand's isolated data.
type WorkspaceID string

// SourceID identifies a source: one app, site, server or feed sending events.
type SourceID string

// TokenID identifies an API token.
type TokenID string

// Workspace is one brand's isolated data and configuration.
type Workspace struct {
	ID        WorkspaceID
	Name      string
	CreatedAt time.Time
}

// Source is an origin of events with its own credentials. The write key is
// what SDKs send; the secret is the second half of mParticle-style key:secret
// credentials. Both are stored only as hashes.
type Source struct {
	ID          SourceID
	WorkspaceID WorkspaceID
	Name        string
	CreatedAt   time.Time
}

// Role is what an operator or API token may do in a workspace.
type Role string

// The roles, from most to least powerful.
const (
	RoleOwner Role = "owner" // everything
	RoleDSR   Role = "dsr"   // data subject requests only (the OpenDSR API)
)

// APIToken is a bearer credential for the admin APIs. Only its hash is stored.
type APIToken struct {
	ID          TokenID
	WorkspaceID WorkspaceID
	Name        string
	Role        Role
	CreatedAt   time.Time
}
