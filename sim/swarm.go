package sim

import "sync"

// Swarm runs seeds on parallel goroutines (each run is single-goroutine;
// parallelism is across seeds) and hands each result to done, from one
// goroutine at a time, in completion order.
func Swarm(seeds []uint64, parallel int, opts Options, done func(*Result)) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan uint64)
	for range max(parallel, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range next {
				res := Run(seed, opts)
				mu.Lock()
				done(res)
				mu.Unlock()
			}
		}()
	}
	for _, s := range seeds {
		next <- s
	}
	close(next)
	wg.Wait()
}
