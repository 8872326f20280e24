package rng

import (
	"fmt"
	"math/rand/v2"
)

// Rand is one named stream of pseudo-random numbers. It is not safe for
// concurrent use; a run has one goroutine.
type Rand struct {
	r    *rand.Rand
	seed uint64
	name string
}

// New returns the stream called name of the run with the given seed.
func New(seed uint64, name string) *Rand {
	s1 := splitmix(seed ^ fnv64(name))
	s2 := splitmix(s1 ^ 0x9e3779b97f4a7c15)
	return &Rand{r: rand.New(rand.NewPCG(s1, s2)), seed: seed, name: name}
}

// Child returns the stream name below this one ("net/conn-3"). It depends
// on the run's seed and the full name only, never on draws made so far, so
// components that create instances (clients, connections) in a varying
// order still give each the same stream.
func (r *Rand) Child(name string) *Rand {
	return New(r.seed, r.name+"/"+name)
}

// Uint64 returns a uniform 64-bit value.
func (r *Rand) Uint64() uint64 { return r.r.Uint64() }

// Int64n returns a uniform value in [0, n); n must be positive.
func (r *Rand) Int64n(n int64) int64 { return r.r.Int64N(n) }

// Range returns a uniform value in [lo, hi].
func (r *Rand) Range(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + r.r.Int64N(hi-lo+1)
}

// Chance returns true with probability p.
func (r *Rand) Chance(p Ratio) bool {
	if p.Num <= 0 || p.Den <= 0 {
		return false
	}
	return r.r.Uint64N(p.Den) < p.Num
}

// Coin is a fair coin.
func (r *Rand) Coin() bool { return r.r.Uint64()&1 == 1 }

// Pick returns a uniform index into a slice of length n (n > 0).
func (r *Rand) Pick(n int) int { return r.r.IntN(n) }

// Ratio is a probability Num/Den. The zero value is never.
type Ratio struct{ Num, Den uint64 }

// Never is the probability zero.
var Never = Ratio{}

func (p Ratio) String() string {
	if p.Num == 0 || p.Den == 0 {
		return "never"
	}
	return fmt.Sprintf("%d/%d", p.Num, p.Den)
}

// RatioIn draws a probability between lo/den and hi/den (inclusive).
func (r *Rand) RatioIn(lo, hi, den uint64) Ratio {
	return Ratio{Num: uint64(r.Range(int64(lo), int64(hi))), Den: den}
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
