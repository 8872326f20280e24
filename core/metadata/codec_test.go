package metadata

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/weirmq/weir/core/port"
)

func strp(s string) *string { return &s }

var topicA = [16]byte{0xa}

// v2Records are v1Records and a partition being reassigned.
func v2Records() []Record {
	return slices.Insert(v1Records(), 7, Record{Partition: &PartitionRecord{TopicID: topicA, Partition: 1,
		Replicas: []port.NodeID{4, 1, 2}, ISR: []port.NodeID{1, 2}, Leader: 1, LeaderEpoch: 3, PartitionEpoch: 7,
		AddingReplicas: []port.NodeID{4}, RemovingReplicas: []port.NodeID{2}}})
}

// sampleBatch has one record of every kind, with every field: v2Records, a
// broker registration naming its directory and a partition with an ELR.
func sampleBatch() []Record {
	return slices.Insert(v2Records(), 8,
		Record{RegisterBroker: &RegisterBrokerRecord{ID: 2, Epoch: 12, Incarnation: "inc2", DirectoryID: [16]byte{0xd, 2}}},
		Record{Partition: &PartitionRecord{TopicID: topicA, Partition: 2,
			Replicas: []port.NodeID{1, 2, 3}, ISR: []port.NodeID{1}, ELR: []port.NodeID{3, 2}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 4}})
}

func TestEncodeDecodeSample(t *testing.T) {
	recs := sampleBatch()
	b := EncodeBatch(recs)
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, recs)
	}
	if !bytes.Equal(EncodeBatch(got), b) {
		t.Fatal("re-encoding decoded records changes the bytes")
	}
	if empty, err := DecodeBatch(EncodeBatch(nil)); err != nil || len(empty) != 0 {
		t.Fatalf("empty batch: %v, %v", empty, err)
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	good := EncodeBatch(sampleBatch())
	reassigning := EncodeBatch(sampleBatch()[7:8]) // ends with the removing replicas
	directory := EncodeBatch(sampleBatch()[8:9])   // ends with the directory id
	eligible := EncodeBatch(sampleBatch()[9:10])   // ends with the ELR
	cases := []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty input", nil, "truncated"},
		{"unknown version", append([]byte{batchVersion + 1}, good[1:]...), fmt.Sprintf("unknown batch version %d", batchVersion+1)},
		{"version zero", append([]byte{0}, good[1:]...), "unknown batch version 0"},
		{"trailing bytes", append(append([]byte{}, good...), 0), "trailing"},
		{"truncated", good[:len(good)-1], "record 13"},
		{"truncated reassignment", reassigning[:len(reassigning)-1], "record 0 (Partition): count 1 exceeds"},
		{"truncated ELR", eligible[:len(eligible)-1], "record 0 (Partition): count 2 exceeds"},
		{"truncated directory id", directory[:len(directory)-1], "record 0 (RegisterBroker): truncated id"},
		{"record count beyond input", []byte{batchVersion, 5, byte(kindRemoveTopic)}, "count 5 exceeds"},
		{"kind zero (no field set)", []byte{batchVersion, 1, 0}, "unknown record kind"},
		{"unknown kind", []byte{batchVersion, 1, 11}, "unknown record kind"},
		{"huge string length", []byte{batchVersion, 1, byte(kindCluster), 0xff, 0xff, 0xff, 0xff, 0x0f}, "exceeds"},
		{"overlong varint", append([]byte{batchVersion, 1, byte(kindUnfenceBroker)}, bytes.Repeat([]byte{0xff}, 11)...), "varint"},
		{"int32 out of range", []byte{batchVersion, 1, byte(kindUnfenceBroker), 0x80, 0x80, 0x80, 0x80, 0x10, 0}, "32 bits"},
		{"bad config value flag", []byte{batchVersion, 1, byte(kindConfig), 2, 0, 1, 'k', 7}, "presence byte 7"},
		{"truncated id", []byte{batchVersion, 1, byte(kindRemoveTopic), 1, 2, 3}, "truncated id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := DecodeBatch(tc.input)
			if err == nil {
				t.Fatalf("decoded %#v, want an error", recs)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want ErrCorrupt mentioning %q", err, tc.want)
			}
		})
	}
}

// v1Batch is what EncodeBatch wrote before version 2 (reassignments), for
// the records v1Records returns: a log written then must still replay.
const v1Batch = "010b0106776569722d3102021403696e630109504c41494e54455854026831888e0102723103021404021405021406066f72646572730a" +
	"000000000000000000000000000000070a000000000000000000000000000000000102000100000902066f72646572730c726574656e74696f6e2e" +
	"6d73010431303030090400016b000a0214d00f080a000000000000000000000000000000"

func v1Records() []Record {
	return []Record{
		{Cluster: &ClusterRecord{ClusterID: "weir-1"}},
		{RegisterBroker: &RegisterBrokerRecord{ID: 1, Epoch: 10, Incarnation: "inc", Rack: "r1",
			Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "h1", Port: 9092}}}},
		{UnfenceBroker: &BrokerEpochRecord{ID: 1, Epoch: 10}},
		{FenceBroker: &BrokerEpochRecord{ID: 1, Epoch: 10}},
		{ShutdownBroker: &BrokerEpochRecord{ID: 1, Epoch: 10}},
		{Topic: &TopicRecord{Name: "orders", ID: topicA}},
		{Partition: &PartitionRecord{TopicID: topicA, Partition: 0, Replicas: []port.NodeID{1}, ISR: nil, Leader: NoLeader}},
		{Config: &ConfigRecord{Resource: ResourceTopic, Name: "orders", Key: "retention.ms", Value: strp("1000")}},
		{Config: &ConfigRecord{Resource: ResourceBroker, Name: "", Key: "k"}},
		{ProducerIDs: &ProducerIDsRecord{Broker: 1, BrokerEpoch: 10, NextProducerID: 1000}},
		{RemoveTopic: &RemoveTopicRecord{ID: topicA}},
	}
}

// unhex decodes golden bytes.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeVersion1: a version 1 batch decodes, its partition records
// without reassignment fields, and encodes again to the same bytes: what
// needs no newer version is written as version 1, which nodes not yet
// upgraded read.
func TestDecodeVersion1(t *testing.T) {
	b := unhex(t, v1Batch)
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v1Records()) {
		t.Fatalf("version 1 batch:\n got %#v\nwant %#v", got, v1Records())
	}
	if again := EncodeBatch(got); !bytes.Equal(again, b) {
		t.Fatalf("re-encoded as %x", again)
	}
	// A version 1 partition record read as version 2 would take the next
	// record's bytes for its reassignment: the version byte decides.
	if _, err := DecodeBatch(append([]byte{2}, b[1:]...)); err == nil {
		t.Fatal("a version 1 body decodes as version 2")
	}
	// A reassignment needs version 2, whatever else the batch holds.
	if v := EncodeBatch(v2Records())[0]; v != 2 {
		t.Fatalf("a batch with a reassignment encoded as version %d", v)
	}
}

// v2Batch is what EncodeBatch wrote before version 3 (directory ids and
// ELRs), for the records v2Records returns.
const v2Batch = "020c0106776569722d3102021403696e630109504c41494e54455854026831888e0102723103021404021405021406066f72646572730a" +
	"000000000000000000000000000000070a000000000000000000000000000000000102000100000000070a0000000000000000000000000000" +
	"00020308020402020402060e010801040902066f72646572730c726574656e74696f6e2e6d73010431303030090400016b000a0214d00f080a" +
	"000000000000000000000000000000"

// TestDecodeVersion2: a version 2 batch decodes, with no directory ids and
// no ELRs, and encodes again to the same bytes; a directory id or an ELR,
// and only they, need version 3.
func TestDecodeVersion2(t *testing.T) {
	b := unhex(t, v2Batch)
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v2Records()) {
		t.Fatalf("version 2 batch:\n got %#v\nwant %#v", got, v2Records())
	}
	if again := EncodeBatch(got); !bytes.Equal(again, b) {
		t.Fatalf("re-encoded as %x", again)
	}
	if _, err := DecodeBatch(append([]byte{3}, b[1:]...)); err == nil {
		t.Fatal("a version 2 body decodes as version 3")
	}
	for i, r := range sampleBatch()[8:10] {
		if v := EncodeBatch(append(v1Records(), r))[0]; v != 3 {
			t.Fatalf("record %d: encoded as version %d, want 3", i, v)
		}
	}
}

func TestEncodeBatchPanicsOnMalformedRecord(t *testing.T) {
	for name, r := range map[string]Record{
		"no field":   {},
		"two fields": {Cluster: &ClusterRecord{}, Topic: &TopicRecord{}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if p := recover(); p == nil || !strings.Contains(p.(string), "exactly one") {
					t.Fatalf("panic %v, want one about exactly one field", p)
				}
			}()
			EncodeBatch([]Record{r})
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		recs := rapid.SliceOf(anyRecord()).Draw(t, "batch")
		b := EncodeBatch(recs)
		if !bytes.Equal(b, EncodeBatch(recs)) {
			t.Fatal("EncodeBatch is not deterministic")
		}
		got, err := DecodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			recs = nil
		}
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, recs) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, recs)
		}
	})
}

// FuzzDecodeBatch: no input panics, and whatever decodes survives an
// encode/decode round trip unchanged.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch(sampleBatch()))
	f.Add(EncodeBatch(nil))
	for _, r := range sampleBatch() {
		f.Add(EncodeBatch([]Record{r}))
	}
	f.Add([]byte{})
	f.Add([]byte{batchVersion, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeBatch(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := DecodeBatch(EncodeBatch(recs))
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, recs) {
			t.Fatalf("round trip changed the records:\n got %#v\nwant %#v", again, recs)
		}
	})
}
