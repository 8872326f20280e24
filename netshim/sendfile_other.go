//go:build !linux

package netshim

import "os"

func (c *conn) sendFile(f *os.File, off, n int64) error { return copyFile(c.nc, f, off, n) }
