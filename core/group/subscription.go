package group

import (
	"encoding/binary"
	"hash/fnv"
	"regexp"
	"slices"
)

// regexRefreshMs bounds how long a resolved regex subscription is reused
// before it is matched again against every topic (Kafka also resolves
// regexes in the background at an interval rather than per heartbeat).
const regexRefreshMs = 10_000

// compileSubscriptionRegex compiles a subscription regex to match whole
// topic names, as Kafka's RE2J Matcher.matches does.
func compileSubscriptionRegex(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + re + `)$`)
}

// internalTopic reports Kafka's internal topics, which regexes do not
// subscribe to.
func internalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

// resolveRegexes matches the group's regexes against the host's topics
// when one is new or the last match is older than regexRefreshMs.
func (c *Coordinator) resolveRegexes(cg *consumerGroup) {
	var used []string
	for _, m := range cg.members {
		if m.regex != "" && !slices.Contains(used, m.regex) {
			used = append(used, m.regex)
		}
	}
	stale := c.nowNs >= cg.regexesNs
	for re := range cg.regexes {
		if !slices.Contains(used, re) {
			delete(cg.regexes, re)
		}
	}
	for _, re := range used {
		if _, ok := cg.regexes[re]; !ok {
			stale = true
		}
	}
	if !stale || len(used) == 0 {
		return
	}
	topics := c.host.Topics()
	for _, re := range used {
		rx, err := compileSubscriptionRegex(re)
		if err != nil {
			// Checked when the member subscribed; a stored one from
			// another broker's dialect matches nothing.
			cg.regexes[re] = nil
			continue
		}
		var names []string
		for _, t := range topics {
			if !internalTopic(t.Name) && rx.MatchString(t.Name) {
				names = append(names, t.Name)
			}
		}
		cg.regexes[re] = names
	}
	cg.regexesNs = c.nowNs + regexRefreshMs*msNs
}

// subscribedNames is every topic name m subscribes to, by name or regex,
// sorted.
func (cg *consumerGroup) subscribedNames(m *consumerMember) []string {
	if m.regex == "" {
		return m.topicNames
	}
	names := append(slices.Clone(m.topicNames), cg.regexes[m.regex]...)
	slices.Sort(names)
	return slices.Compact(names)
}

// subscribedTopics is the metadata of every existing topic some member
// subscribes to, sorted by name.
func (c *Coordinator) subscribedTopics(cg *consumerGroup) []TopicMeta {
	var names []string
	for _, m := range cg.members {
		names = append(names, cg.subscribedNames(m)...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var out []TopicMeta
	for _, n := range names {
		if t, ok := c.host.Topic(n); ok {
			out = append(out, t)
		}
	}
	return out
}

// metadataHash fingerprints subscribed topics: a change of it means the
// group must be assigned again.
func metadataHash(topics []TopicMeta) int64 {
	if len(topics) == 0 {
		return 0
	}
	h := fnv.New64a()
	var n [4]byte
	for _, t := range topics {
		h.Write([]byte(t.Name))
		h.Write([]byte{0})
		h.Write(t.ID[:])
		binary.BigEndian.PutUint32(n[:], uint32(t.Partitions))
		h.Write(n[:])
	}
	return int64(h.Sum64())
}

// normalizeTopicNames sorts and dedups a subscription's names.
func normalizeTopicNames(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
