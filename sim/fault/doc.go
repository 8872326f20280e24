// Package fault names the simulator's fault classes and counts how often
// each fired in a run. The classes, and why each stays inside the fault
// model the claims are made for, are described by the fault atlas in the
// documentation of package sim.
package fault
