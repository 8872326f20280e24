//go:build !weirbugs

package bugs

// Enabled reports whether this binary was built with the weirbugs tag, that
// is, whether Set can switch bugs on.
const Enabled = false

// On reports whether bug b is switched on. Without the weirbugs tag it is
// always false and every planted branch compiles away.
func On(Bug) bool { return false }

// Set does nothing without the weirbugs tag.
func Set(Bug, bool) {}
