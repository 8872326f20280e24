package proc

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/broker"
	"github.com/weirmq/weir/core/port"
)

// describeInput renders an input for the trace.
func describeInput(in port.Input) string {
	switch in := in.(type) {
	case port.ConnOpened:
		return "in: conn " + strconv.FormatUint(uint64(in.Conn), 10) + " opened from " + in.Remote
	case port.ConnClosed:
		return "in: conn " + strconv.FormatUint(uint64(in.Conn), 10) + " closed"
	case port.Request:
		s := "in: conn " + strconv.FormatUint(uint64(in.Conn), 10) + " " + kmsg.NameForKey(in.Header.APIKey) +
			" v" + strconv.Itoa(int(in.Header.APIVersion)) + " corr " + strconv.Itoa(int(in.Header.CorrelationID))
		if in.Err != nil {
			s += " err " + in.Err.Error()
		}
		return s
	case port.DiskDone:
		s := "in: disk op " + strconv.FormatUint(uint64(in.Op), 10) + " done"
		if in.Data != nil {
			s += " (" + strconv.Itoa(len(in.Data)) + " bytes read)"
		}
		if in.Err != nil {
			s += ": " + in.Err.Error()
		}
		return s
	case port.Wake:
		return "in: wake"
	case port.Stop:
		return "in: stop (SIGTERM)"
	case port.PeerMessage:
		return "in: peer message from " + strconv.Itoa(int(in.From)) + " " + broker.DescribePeer(port.SendPeer{Data: in.Data})
	}
	return "in: ?"
}

// describeEffect renders an effect for the trace.
func describeEffect(e port.Effect) string {
	switch e := e.(type) {
	case port.DiskOp:
		s := "out: disk op " + strconv.FormatUint(uint64(e.ID), 10) + " " + e.Kind.String() + " " + e.Path
		switch e.Kind {
		case port.OpWrite:
			s += " @" + strconv.FormatInt(e.Pos, 10) + "+" + strconv.Itoa(len(e.Data))
		case port.OpTruncate:
			s += " to " + strconv.FormatInt(e.Pos, 10)
		case port.OpRead:
			s += " @" + strconv.FormatInt(e.Pos, 10) + "+" + strconv.FormatInt(e.Len, 10)
		case port.OpRename:
			s += " -> " + e.To
		}
		return s
	case port.Send:
		var n int64
		files := 0
		for _, c := range e.Chunks {
			n += c.Size()
			if c.File != "" {
				files++
			}
		}
		return "out: send conn " + strconv.FormatUint(uint64(e.Conn), 10) + " " + strconv.FormatInt(n, 10) +
			" bytes (" + strconv.Itoa(files) + " file ranges)"
	case port.CloseConn:
		return "out: close conn " + strconv.FormatUint(uint64(e.Conn), 10)
	case port.SendPeer:
		return "out: peer message to " + strconv.Itoa(int(e.To)) + " " + broker.DescribePeer(e)
	}
	return "out: ?"
}
