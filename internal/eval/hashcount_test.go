//go:build allot_hashcount

package eval

// HashCount is the number of MD5 digests computed so far.
func HashCount() int64 { return hashCount.Load() }
