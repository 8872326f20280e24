package group

// The records of KIP-848 consumer groups in __consumer_offsets, in Kafka's
// schemas (group-coordinator/src/main/resources/common/message). kmsg does
// not define them. A key is its record type (Kafka's "apiKey", which the
// log reads as the key version) followed by non-flexible fields; a value
// is its version followed by flexible fields and a tagged-field section.
//
// Written, all with value version 0:
//   - 3 ConsumerGroupMetadata (GroupId) → Epoch, MetadataHash (tag 0)
//   - 5 ConsumerGroupMemberMetadata (GroupId, MemberId) → InstanceId,
//     RackId, ClientId, ClientHost, SubscribedTopicNames,
//     SubscribedTopicRegex, RebalanceTimeoutMs, ServerAssignor
//   - 6 ConsumerGroupTargetAssignmentMetadata (GroupId) → AssignmentEpoch
//   - 7 ConsumerGroupTargetAssignmentMember (GroupId, MemberId) →
//     TopicPartitions
//   - 8 ConsumerGroupCurrentMemberAssignment (GroupId, MemberId) →
//     MemberEpoch, PreviousMemberEpoch, State, AssignedPartitions,
//     PartitionsPendingRevocation
//
// Type 4 (ConsumerGroupPartitionMetadata, dropped by Kafka 4.1 for the
// metadata hash) is not written; its records are read past and its
// tombstone is written when a group goes. The hash in type 3 is Weir's
// own (FNV-1a over the subscribed topics), not Kafka 4.1's Murmur3: a
// Kafka broker that loads it would see a different hash and rebalance the
// group once, which is harmless. Unknown tagged fields are skipped.

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Record types (key versions) of consumer groups.
const (
	cgMetadataType          = 3
	cgPartitionMetadataType = 4
	cgMemberType            = 5
	cgTargetMetadataType    = 6
	cgTargetMemberType      = 7
	cgCurrentType           = 8
)

func cgGroupKey(typ int16, group string) []byte {
	return kbin.AppendString(kbin.AppendInt16(nil, typ), group)
}

func cgMemberKey(typ int16, group, member string) []byte {
	return kbin.AppendString(cgGroupKey(typ, group), member)
}

// cgKey is a decoded key: member is "" for group-level records.
type cgKey struct {
	typ           int16
	group, member string
}

func readCGKey(b []byte) (cgKey, error) {
	r := kbin.Reader{Src: b}
	k := cgKey{typ: r.Int16(), group: r.String()}
	switch k.typ {
	case cgMemberType, cgTargetMemberType, cgCurrentType:
		k.member = r.String()
	}
	return k, r.Complete()
}

// cgValue starts a value of version 0.
func cgValue() []byte { return kbin.AppendInt16(nil, 0) }

// readCGValue checks a value's version and returns a reader past it.
func readCGValue(b []byte) (*kbin.Reader, error) {
	r := &kbin.Reader{Src: b}
	if v := r.Int16(); v != 0 {
		return nil, fmt.Errorf("value version %d", v)
	}
	return r, nil
}

// skipTags reads past a tagged-field section, returning the fields by tag
// for the caller to decode the ones it knows.
func skipTags(r *kbin.Reader) map[uint32][]byte {
	n := r.Uvarint()
	var tags map[uint32][]byte
	for i := uint32(0); i < n && r.Ok(); i++ {
		tag := r.Uvarint()
		size := r.Uvarint()
		if tags == nil {
			tags = map[uint32][]byte{}
		}
		tags[tag] = r.Span(int(size))
	}
	return tags
}

func appendNoTags(b []byte) []byte { return kbin.AppendUvarint(b, 0) }

// cgMetadataValue is record type 3.
type cgMetadataValue struct {
	epoch        int32
	metadataHash int64
}

func (v cgMetadataValue) encode() []byte {
	b := kbin.AppendInt32(cgValue(), v.epoch)
	if v.metadataHash == 0 {
		return appendNoTags(b)
	}
	b = kbin.AppendUvarint(b, 1)
	b = kbin.AppendUvarint(b, 0)
	b = kbin.AppendUvarint(b, 8)
	return kbin.AppendInt64(b, v.metadataHash)
}

func decodeCGMetadata(b []byte) (v cgMetadataValue, err error) {
	r, err := readCGValue(b)
	if err != nil {
		return v, err
	}
	v.epoch = r.Int32()
	if h := skipTags(r)[0]; len(h) == 8 {
		v.metadataHash = int64(binary.BigEndian.Uint64(h))
	}
	return v, r.Complete()
}

// epochValue is record type 6: one int32 and no tags.
func epochValue(epoch int32) []byte { return appendNoTags(kbin.AppendInt32(cgValue(), epoch)) }

func decodeEpochValue(b []byte) (int32, error) {
	r, err := readCGValue(b)
	if err != nil {
		return 0, err
	}
	e := r.Int32()
	skipTags(r)
	return e, r.Complete()
}

// memberValue is record type 5 of m.
func memberValue(m *consumerMember) []byte {
	b := cgValue()
	b = kbin.AppendCompactNullableString(b, m.instanceID)
	b = kbin.AppendCompactNullableString(b, m.rackID)
	b = kbin.AppendCompactString(b, m.clientID)
	b = kbin.AppendCompactString(b, m.clientHost)
	b = kbin.AppendCompactArrayLen(b, len(m.topicNames))
	for _, t := range m.topicNames {
		b = kbin.AppendCompactString(b, t)
	}
	b = kbin.AppendCompactNullableString(b, optional(m.regex))
	b = kbin.AppendInt32(b, m.rebalanceTimeoutMs)
	b = kbin.AppendCompactNullableString(b, optional(m.serverAssignor))
	return appendNoTags(b)
}

// decodeMember fills a member's stored metadata from record type 5.
func decodeMember(id string, b []byte) (*consumerMember, error) {
	r, err := readCGValue(b)
	if err != nil {
		return nil, err
	}
	m := &consumerMember{id: id}
	m.instanceID = r.CompactNullableString()
	m.rackID = r.CompactNullableString()
	m.clientID = r.CompactString()
	m.clientHost = r.CompactString()
	n := r.CompactArrayLen()
	for i := int32(0); i < n && r.Ok(); i++ {
		m.topicNames = append(m.topicNames, r.CompactString())
	}
	m.topicNames = sortedStrings(m.topicNames)
	if re := r.CompactNullableString(); re != nil {
		m.regex = *re
	}
	m.rebalanceTimeoutMs = r.Int32()
	if a := r.CompactNullableString(); a != nil {
		m.serverAssignor = *a
	}
	skipTags(r) // tag 0, ClassicMemberMetadata: members of the classic protocol are not served
	return m, r.Complete()
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// appendTopicPartitions writes an assignment as Kafka's []TopicPartitions,
// topics in id order.
func appendTopicPartitions(b []byte, a assignment) []byte {
	ids := a.sortedTopics()
	b = kbin.AppendCompactArrayLen(b, len(ids))
	for _, t := range ids {
		b = kbin.AppendUuid(b, t)
		b = kbin.AppendCompactArrayLen(b, len(a[t]))
		for _, p := range a[t] {
			b = kbin.AppendInt32(b, p)
		}
		b = appendNoTags(b)
	}
	return b
}

func readTopicPartitions(r *kbin.Reader) assignment {
	var parts []idPartition
	n := r.CompactArrayLen()
	for i := int32(0); i < n && r.Ok(); i++ {
		t := r.Uuid()
		np := r.CompactArrayLen()
		for j := int32(0); j < np && r.Ok(); j++ {
			parts = append(parts, idPartition{t, r.Int32()})
		}
		skipTags(r) // tag 0, AssignmentEpochs (KIP-1251), not used
	}
	return assignmentOf(parts)
}

// targetValue is record type 7.
func targetValue(a assignment) []byte { return appendNoTags(appendTopicPartitions(cgValue(), a)) }

func decodeTarget(b []byte) (assignment, error) {
	r, err := readCGValue(b)
	if err != nil {
		return nil, err
	}
	a := readTopicPartitions(r)
	skipTags(r)
	return a, r.Complete()
}

// currentValue is record type 8 of m.
func currentValue(m *consumerMember) []byte {
	b := kbin.AppendInt32(cgValue(), m.epoch)
	b = kbin.AppendInt32(b, m.prevEpoch)
	b = kbin.AppendInt8(b, int8(m.state))
	b = appendTopicPartitions(b, m.assigned)
	b = appendTopicPartitions(b, m.pending)
	return appendNoTags(b)
}

// storedCurrent is a decoded record type 8.
type storedCurrent struct {
	epoch, prevEpoch  int32
	state             memberState
	assigned, pending assignment
}

func decodeCurrent(b []byte) (v storedCurrent, err error) {
	r, err := readCGValue(b)
	if err != nil {
		return v, err
	}
	v.epoch, v.prevEpoch = r.Int32(), r.Int32()
	v.state = memberState(r.Int8())
	if _, ok := memberStateNames[v.state]; !ok {
		v.state = memberUnknown
	}
	v.assigned = readTopicPartitions(r)
	v.pending = readTopicPartitions(r)
	skipTags(r)
	return v, r.Complete()
}
