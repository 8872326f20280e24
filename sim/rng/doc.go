// Package rng is the simulator's only source of randomness.
//
// One seed builds one Source; every component draws from its own named
// stream, whose seed is derived from the run's seed and the stream's name
// alone. Adding draws to one component therefore does not reshuffle the
// choices of any other, so a seed keeps most of its meaning as the
// simulator grows. Probabilities are integer ratios, never floats, so that
// a choice cannot depend on rounding.
package rng
