package config

import (
	"maps"
	"slices"
)

// Config sources, numbered as kmsg.ConfigSource. Weir has no dynamic broker
// configuration, so only these three occur.
const (
	SourceDynamicTopic int8 = 1 // DYNAMIC_TOPIC_CONFIG: a topic override
	SourceStaticBroker int8 = 4 // STATIC_BROKER_CONFIG: properties file or flag
	SourceDefault      int8 = 5 // DEFAULT_CONFIG
)

// Entry is one configuration in a DescribeConfigs response (and in a
// CreateTopics response, which reports the new topic's configs).
type Entry struct {
	Name  string
	Value *string // nil: the key has no value (a null default)
	// ReadOnly is true for every broker key: Weir cannot change broker
	// configuration at run time, so a client must not offer to.
	ReadOnly  bool
	Source    int8
	Sensitive bool // always false: Weir has no password keys
	// Synonyms are the places the value may come from, highest precedence
	// first; Synonyms[0] is where it does come from. Empty unless asked for.
	Synonyms []Synonym
	Type     int8 // a Type, as kmsg.ConfigType
	// Documentation is always filled in; callers drop it unless the request
	// asked for it (IncludeDocumentation).
	Documentation *string
}

// Synonym is one place a configuration value may come from.
type Synonym struct {
	Name   string
	Value  *string
	Source int8
}

// DescribeTopic describes every topic key of a topic with the given
// overrides, sorted by name. Overrides are expected to have been validated
// by TopicConfig when they were set; an unknown key is left out, and a value
// that does not parse is shown as given.
//
// Like Kafka, an unset key's synonyms show the broker value as the broker
// key spells it (log.retention.hours=168) while the entry's value is in the
// topic key's units (retention.ms=604800000).
func (b *Broker) DescribeTopic(overrides map[string]string, includeSynonyms bool) []Entry {
	parsed := make(map[string]any, len(overrides))
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		if d := topicByName[k]; d != nil {
			v, err := parse(d, overrides[k])
			if err != nil {
				v = overrides[k] // renders as given
			}
			parsed[k] = v
		}
	}
	out := make([]Entry, 0, len(topicDefs))
	for i := range topicDefs {
		d := &topicDefs[i]
		chain := b.topicChain(d, parsed)
		out = append(out, entry(d, render(topicValue(d, chain)), false, chain, includeSynonyms))
	}
	return out
}

// DescribeBroker describes every broker key, sorted by name.
func (b *Broker) DescribeBroker(includeSynonyms bool) []Entry {
	out := make([]Entry, 0, len(brokerDefs))
	for i := range brokerDefs {
		d := &brokerDefs[i]
		names := brokerSynonyms[d.Name]
		if names == nil {
			names = []string{d.Name}
		}
		var chain []link
		for _, n := range names {
			chain = append(chain, b.brokerLinks(n)...)
		}
		out = append(out, entry(d, render(b.vals[d.Name]), true, chain, includeSynonyms))
	}
	return out
}

// entry builds an Entry whose source is the head of chain, as Kafka's
// ConfigHelper does; with no chain at all the value is the key's default.
func entry(d *Def, value *string, readOnly bool, chain []link, includeSynonyms bool) Entry {
	doc := d.Doc // a copy: the caller may write through the pointer
	e := Entry{
		Name:          d.Name,
		Value:         value,
		ReadOnly:      readOnly,
		Source:        SourceDefault,
		Type:          int8(d.Type),
		Documentation: &doc,
	}
	if len(chain) > 0 {
		e.Source = chain[0].source
	}
	if includeSynonyms {
		e.Synonyms = make([]Synonym, len(chain))
		for i, l := range chain {
			e.Synonyms[i] = Synonym{Name: l.name, Value: render(l.val), Source: l.source}
		}
	}
	return e
}
