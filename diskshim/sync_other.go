//go:build !linux

package diskshim

import "os"

func datasync(f *os.File) error { return f.Sync() }
