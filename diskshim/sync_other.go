//go:build !linux

package diskshim

import "os"

func datasync(f *os.File) error { return f.Sync() }

// dropCache is Linux-only (posix_fadvise); elsewhere reads may see what a
// failed fsync left in the cache.
func dropCache(*os.File) error { return nil }
