package store

import "github.com/allot-dev/allot/internal/core"

// The domain types and errors moved to internal/core. These aliases keep
// code written against the old names compiling while branches merge; new
// code uses core's names. The lead deletes this file after the merge.

type (
	Environment       = core.Environment
	Flag              = core.Flag
	Variation         = core.Variation
	FlagSettings      = core.FlagSettings
	Allocation        = core.Allocation
	Weight            = core.Weight
	Rule              = core.Rule
	Condition         = core.Condition
	Percent           = core.Percent
	SDKKey            = core.SDKKey
	AdminToken        = core.AdminToken
	AuditEntry        = core.AuditEntry
	EnvironmentConfig = core.EnvironmentConfig
	FlagConfig        = core.FlagConfig
	Error             = core.Error
)

const (
	DefaultEnvironment = core.DefaultEnvironment
	Experiment         = core.Experiment
	Rollout            = core.Rollout
	Targeted           = core.Targeted
	Draft              = core.Draft
	Running            = core.Running
	Stopped            = core.Stopped
	Whole              = core.Whole
	SDKKeyPrefix       = core.SDKKeyPrefix
	AdminTokenPrefix   = core.AdminTokenPrefix

	EINVALID      = core.EINVALID
	ENOTFOUND     = core.ENOTFOUND
	ECONFLICT     = core.ECONFLICT
	EUNAUTHORIZED = core.EUNAUTHORIZED
	EUNAVAILABLE  = core.EUNAVAILABLE
	EINTERNAL     = core.EINTERNAL
)

var (
	Errorf        = core.Errorf
	Invalid       = core.Invalid
	ErrorCode     = core.ErrorCode
	ErrorMessage  = core.ErrorMessage
	WithActor     = core.WithActor
	Actor         = core.Actor
	HashSecret    = core.HashSecret
	HashSecretHex = core.HashSecretHex

	ValidateEnvironmentName = core.ValidateEnvironmentName
)
