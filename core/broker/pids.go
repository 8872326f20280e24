package broker

// producerIDBlock is how many producer ids one metadata write reserves, so
// that InitProducerId rarely waits for the disk, and ids handed out before a
// crash are never handed out again after it.
const producerIDBlock = 1000

type pidAllocator struct {
	next, blockEnd int64
	reserving      bool
	waiting        []func(pid int64, ok bool)
}

func (a *pidAllocator) restore(nextBlock int64) { a.next, a.blockEnd = nextBlock, nextBlock }

// allocate hands out a new producer id, reserving a new block durably
// first when the current one is used up.
func (n *Node) allocateProducerID(done func(pid int64, ok bool)) {
	a := &n.pids
	if a.next < a.blockEnd {
		a.next++
		done(a.next-1, true)
		return
	}
	a.waiting = append(a.waiting, done)
	if a.reserving {
		return
	}
	a.reserving = true
	n.meta.image.NextProducerIDBlock = a.blockEnd + producerIDBlock
	n.meta.commit(func(ok bool) {
		a.reserving = false
		waiting := a.waiting
		a.waiting = nil
		if ok {
			a.blockEnd += producerIDBlock
		}
		for _, w := range waiting {
			if !ok {
				w(-1, false)
				continue
			}
			n.allocateProducerID(w)
		}
	})
}
