package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/record"
	"github.com/weirmq/weir/core/wire"
)

// rawConn speaks the Kafka protocol by hand, to send what no client would.
type rawConn struct {
	t *testing.T
	c net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t, c}
}

func (r *rawConn) write(b []byte) {
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	id := "raw"
	r.write(wire.AppendRequest(nil, wire.RequestHeader{APIKey: req.Key(), APIVersion: req.GetVersion(), CorrelationID: 7, ClientID: &id}, req))
	frame := r.readFrame()
	corr, resp, err := wire.ParseResponse(frame, req.Key(), req.GetVersion())
	if err != nil || corr != 7 {
		r.t.Fatalf("response: corr %d err %v", corr, err)
	}
	return resp
}

func (r *rawConn) readFrame() []byte {
	r.t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		r.t.Fatalf("read size: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.c, frame); err != nil {
		r.t.Fatalf("read frame: %v", err)
	}
	return frame
}

// expectClosed requires the broker to close the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	var b [1]byte
	if _, err := r.c.Read(b[:]); !errors.Is(err, io.EOF) {
		r.t.Fatalf("connection not closed by the broker: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	b := startBroker(t, "", "--override", "socket.request.max.bytes=65536")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, b.addr))
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("2000")}, "bad"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}

	t.Run("oversized frame", func(t *testing.T) {
		r := dialRaw(t, b.addr)
		r.write([]byte{0, 2, 0, 0}) // 128 KiB, over socket.request.max.bytes
		r.expectClosed()
	})
	t.Run("unknown api key", func(t *testing.T) {
		r := dialRaw(t, b.addr)
		r.write([]byte{0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0})
		r.expectClosed()
	})
	t.Run("garbage body", func(t *testing.T) {
		r := dialRaw(t, b.addr)
		// A Metadata v1 header followed by an array length that runs past
		// the frame.
		r.write([]byte{0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff})
		r.expectClosed()
	})
	t.Run("api versions too new", func(t *testing.T) {
		r := dialRaw(t, b.addr)
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 4
		req.ClientSoftwareName, req.ClientSoftwareVersion = "weir-test", "1.0"
		id := "raw"
		frame := wire.AppendRequest(nil, wire.RequestHeader{APIKey: 18, APIVersion: 4, CorrelationID: 9, ClientID: &id}, req)
		binary.BigEndian.PutUint16(frame[6:], 99) // a version from the future
		r.write(frame)
		corr, resp, err := wire.ParseResponse(r.readFrame(), 18, 0)
		av := resp.(*kmsg.ApiVersionsResponse)
		if err != nil || corr != 9 || av.ErrorCode != kerr.UnsupportedVersion.Code || len(av.ApiKeys) == 0 {
			t.Fatalf("fallback: corr %d err %v code %d keys %d", corr, err, av.ErrorCode, len(av.ApiKeys))
		}
		// The connection stays usable at a version we speak.
		ok := r.roundTrip(req).(*kmsg.ApiVersionsResponse)
		if ok.ErrorCode != 0 {
			t.Fatalf("after fallback: %d", ok.ErrorCode)
		}
	})

	produce := func(t *testing.T, records []byte) int16 {
		r := dialRaw(t, b.addr)
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "bad"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := r.roundTrip(req).(*kmsg.ProduceResponse)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	good := func(n int) []byte {
		spec := record.BuildSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: time.Now().UnixMilli()}
		for i := 0; i < n; i++ {
			spec.Records = append(spec.Records, record.BuildRecord{Value: []byte("0123456789")})
		}
		return record.Build(spec)
	}
	t.Run("corrupt batch", func(t *testing.T) {
		batch := good(3)
		batch[len(batch)-1] ^= 0x40
		if code := produce(t, batch); code != kerr.CorruptMessage.Code {
			t.Fatalf("flipped bit: error %d, want CORRUPT_MESSAGE", code)
		}
		if code := produce(t, good(3)[:40]); code != kerr.CorruptMessage.Code {
			t.Fatalf("truncated batch: error %d, want CORRUPT_MESSAGE", code)
		}
	})
	t.Run("two batches", func(t *testing.T) {
		if code := produce(t, append(good(1), good(1)...)); code != kerr.InvalidRecord.Code {
			t.Fatalf("error %d, want INVALID_RECORD", code)
		}
	})
	t.Run("too large", func(t *testing.T) {
		if code := produce(t, good(200)); code != kerr.MessageTooLarge.Code {
			t.Fatalf("error %d, want MESSAGE_TOO_LARGE", code)
		}
	})

	ends, err := adm.ListEndOffsets(ctx, "bad")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("bad", 0); o.Offset != 0 {
		t.Fatalf("rejected batches were stored: end offset %d", o.Offset)
	}
	if code := produce(t, good(3)); code != 0 {
		t.Fatalf("a good batch after the bad ones: error %d", code)
	}
}
