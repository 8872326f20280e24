//go:build weirbugs

package bugs

// Enabled reports whether this binary was built with the weirbugs tag, that
// is, whether Set can switch bugs on.
const Enabled = true

// on is the set of bugs switched on; the simulator's teeth test writes it
// between runs, never during one.
var on [numBugs]bool

// On reports whether bug b is switched on.
func On(b Bug) bool { return on[b] }

// Set switches bug b on or off.
func Set(b Bug, enabled bool) { on[b] = enabled }
