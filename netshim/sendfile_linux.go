package netshim

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxSendfile keeps each call under the kernel's per-call cap (~2 GiB).
const maxSendfile = 1 << 30

// sendFile sends n bytes of f from off by sendfile(2). The offset is passed
// explicitly, so the shared descriptor's own offset never moves and any
// number of connections can send from one file at once. EAGAIN parks the
// writer in the netpoller until the socket is writable again.
func (c *conn) sendFile(f *os.File, off, n int64) error {
	if c.raw == nil {
		return copyFile(c.nc, f, off, n)
	}
	src := int(f.Fd())
	var serr error
	err := c.raw.Write(func(dst uintptr) bool {
		for n > 0 {
			w, err := unix.Sendfile(int(dst), src, &off, int(min(n, maxSendfile)))
			if w > 0 {
				n -= int64(w)
			}
			switch {
			case err == unix.EAGAIN:
				return false
			case err == unix.EINTR:
			case err != nil:
				serr = os.NewSyscallError("sendfile", err)
				return true
			case w == 0:
				serr = io.ErrUnexpectedEOF // the file is shorter than the range
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return serr
}
