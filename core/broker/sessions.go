package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchSession is a KIP-227 incremental fetch session: the broker remembers
// the partitions a client fetches and what it last told it about each, so
// that requests and responses carry only what changed.
type fetchSession struct {
	id        int32
	nextEpoch int32
	// parts is in the order partitions joined the session (Kafka's order);
	// byKey finds them.
	parts    []*sessionPart
	byKey    map[partKey]*sessionPart
	lastUsed int64 // monotonic ns, for eviction
}

// partKey names a partition as a fetch request does: by topic name before
// v13, by topic id from v13 on; a session sees one form only.
type partKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// sessionPart is one partition of a session. Partitions are named, not
// pointed to, so a deleted and re-created topic is looked up afresh.
type sessionPart struct {
	partKey
	offset      int64
	maxBytes    int32
	leaderEpoch int32 // the client's current leader epoch, -1 for none
	// What the client was last told; a change means the partition goes in
	// the next incremental response even without records.
	sentHW, sentLogStart int64
	sentOnce             bool
}

// sessionCache holds sessions up to max.incremental.fetch.session.cache.slots,
// evicting the least recently used.
type sessionCache struct {
	slots    int
	sessions []*fetchSession
}

func newSessionCache(slots int) sessionCache { return sessionCache{slots: slots} }

func (c *sessionCache) get(id int32) *fetchSession {
	for _, s := range c.sessions {
		if s.id == id {
			return s
		}
	}
	return nil
}

func (c *sessionCache) remove(id int32) {
	for i, s := range c.sessions {
		if s.id == id {
			c.sessions = append(c.sessions[:i], c.sessions[i+1:]...)
			return
		}
	}
}

// create opens a session, or returns nil when the cache has no slots.
func (n *Node) createSession() *fetchSession {
	c := &n.sessions
	if c.slots <= 0 {
		return nil
	}
	if len(c.sessions) >= c.slots {
		lru := 0
		for i, s := range c.sessions {
			if s.lastUsed < c.sessions[lru].lastUsed {
				lru = i
			}
		}
		c.sessions = append(c.sessions[:lru], c.sessions[lru+1:]...)
	}
	id := int32(0)
	for id <= 0 || c.get(id) != nil {
		id = int32(n.rnd.Uint32() >> 1)
	}
	s := &fetchSession{id: id, nextEpoch: 1, lastUsed: n.now.MonoNs, byKey: map[partKey]*sessionPart{}}
	c.sessions = append(c.sessions, s)
	return s
}

// update applies a request's partitions (new or changed), then its
// forgotten ones.
func (s *fetchSession) update(req *kmsg.FetchRequest) {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := partKey{rt.Topic, rt.TopicID, rp.Partition}
			sp := s.byKey[k]
			if sp == nil {
				sp = &sessionPart{partKey: k}
				s.byKey[k] = sp
				s.parts = append(s.parts, sp)
			}
			sp.offset, sp.maxBytes, sp.leaderEpoch = rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch
		}
	}
	forgot := false
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			k := partKey{ft.Topic, ft.TopicID, p}
			if s.byKey[k] != nil {
				delete(s.byKey, k)
				forgot = true
			}
		}
	}
	if forgot {
		kept := s.parts[:0]
		for _, sp := range s.parts {
			if s.byKey[sp.partKey] == sp {
				kept = append(kept, sp)
			}
		}
		s.parts = kept
	}
}
