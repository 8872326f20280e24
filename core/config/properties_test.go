package config

import (
	"maps"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// serverProperties is Apache Kafka's KRaft sample config/kraft/server.properties,
// abridged, with the layout quirks a hand-edited file has.
const serverProperties = `# Licensed to the Apache Software Foundation (ASF) under one or more
# contributor license agreements.

############################# Server Basics #############################

# The role of this server. Setting this puts us in KRaft mode
process.roles=broker,controller

# The node id associated with this instance's roles
node.id=1

# The connect string for the controller quorum
controller.quorum.voters=1@localhost:9093

############################# Socket Server Settings #############################
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600

############################# Log Basics #############################
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1

############################# Internal Topic Settings  #############################
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1

############################# Log Flush Policy #############################
#log.flush.interval.messages=10000
#log.flush.interval.ms=1000

############################# Log Retention Policy #############################
log.retention.hours=168
#log.retention.bytes=1073741824
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
`

func TestParseServerProperties(t *testing.T) {
	props, warnings, err := ParseProperties(serverProperties)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("err=%v warnings=%v", err, warnings)
	}
	want := map[string]string{
		"process.roles":                            "broker,controller",
		"node.id":                                  "1",
		"controller.quorum.voters":                 "1@localhost:9093",
		"listeners":                                "PLAINTEXT://:9092,CONTROLLER://:9093",
		"inter.broker.listener.name":               "PLAINTEXT",
		"advertised.listeners":                     "PLAINTEXT://localhost:9092",
		"controller.listener.names":                "CONTROLLER",
		"listener.security.protocol.map":           "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
		"num.network.threads":                      "3",
		"num.io.threads":                           "8",
		"socket.send.buffer.bytes":                 "102400",
		"socket.receive.buffer.bytes":              "102400",
		"socket.request.max.bytes":                 "104857600",
		"log.dirs":                                 "/tmp/kraft-combined-logs",
		"num.partitions":                           "1",
		"num.recovery.threads.per.data.dir":        "1",
		"offsets.topic.replication.factor":         "1",
		"transaction.state.log.replication.factor": "1",
		"transaction.state.log.min.isr":            "1",
		"log.retention.hours":                      "168",
		"log.segment.bytes":                        "1073741824",
		"log.retention.check.interval.ms":          "300000",
	}
	if !maps.Equal(props, want) {
		t.Errorf("got %v\nwant %v", props, want)
	}
}

func TestParseProperties(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       map[string]string
		warnings   int
	}{
		{"equals", "a=b", map[string]string{"a": "b"}, 0},
		{"colon", "a:b", map[string]string{"a": "b"}, 0},
		{"space", "a b", map[string]string{"a": "b"}, 0},
		{"spaces around separator", "  a  =  b", map[string]string{"a": "b"}, 0},
		{"trailing space kept", "a=b  ", map[string]string{"a": "b  "}, 0},
		{"second separator is value", "a==b", map[string]string{"a": "=b"}, 0},
		{"separator after space", "a = :b", map[string]string{"a": ":b"}, 0},
		{"key only", "a", map[string]string{"a": ""}, 0},
		{"empty key", "=b", map[string]string{"": "b"}, 0},
		{"comments", "# c\n! c\n  # c\na=1", map[string]string{"a": "1"}, 0},
		{"hash in value", "a=b#c", map[string]string{"a": "b#c"}, 0},
		{"CRLF and CR", "a=1\r\nb=2\rc=3\n", map[string]string{"a": "1", "b": "2", "c": "3"}, 0},
		{"continuation", "a=one,\\\n    two,\\\n\tthree", map[string]string{"a": "one,two,three"}, 0},
		{"continuation into comment marker", "a=x\\\n#y", map[string]string{"a": "x#y"}, 0},
		{"comment does not continue", "#a\\\nb=1", map[string]string{"b": "1"}, 0},
		{"escaped backslash ends line", "a=x\\\\\nb=1", map[string]string{"a": `x\`, "b": "1"}, 0},
		{"backslash at end of text", "a=x\\", map[string]string{"a": "x"}, 0},
		{"escapes", `a=\t\n\r\f\=\:\\\q`, map[string]string{"a": "\t\n\r\f=:\\q"}, 0},
		{"escaped separator in key", `a\=b\ c=d`, map[string]string{"a=b c": "d"}, 0},
		{"unicode escape", `a=caf\u00e9 \u20AC`, map[string]string{"a": "café €"}, 0},
		{"surrogate pair", `a=\uD83D\uDE00`, map[string]string{"a": "😀"}, 0},
		{"lone surrogate", `a=\uD83Dx`, map[string]string{"a": "\uFFFDx"}, 1},
		{"raw UTF-8", "clé=vålue", map[string]string{"clé": "vålue"}, 0},
		{"duplicate key", "a=1\na=2", map[string]string{"a": "2"}, 1},
		{"empty", "", map[string]string{}, 0},
		{"byte-order mark", "\uFEFFa=1", map[string]string{"a": "1"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warnings, err := ParseProperties(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if len(warnings) != tc.warnings {
				t.Errorf("warnings %q, want %d", warnings, tc.warnings)
			}
		})
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	for _, text := range []string{`a=\u12`, "x=1\nb=\\uZZZZ", `\u00g0=1`} {
		_, _, err := ParseProperties(text)
		if err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: err = %v, want a malformed-escape error naming the line", text, err)
		}
	}
}

// special makes the generated strings dense in what the format treats
// specially, which arbitrary Unicode would rarely hit.
var special = rapid.OneOf(
	rapid.SampledFrom([]rune(" \t\f\n\r\\=:#!u0Aaé€\x00\x7f😀\uFFFD")),
	rapid.Rune(),
)

// genString also draws byte strings that are not UTF-8, which must pass
// through unchanged.
func genString() *rapid.Generator[string] {
	bytes := rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) })
	return rapid.OneOf(rapid.String(), rapid.StringOf(special), bytes)
}

// Formatting then parsing returns the same map, for any keys and values.
func TestPropertiesRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		props := rapid.MapOf(genString(), genString()).Draw(t, "props")
		text := FormatProperties(props)
		got, warnings, err := ParseProperties(text)
		if err != nil || len(warnings) > 0 {
			t.Fatalf("text %q: err=%v warnings=%v", text, err, warnings)
		}
		if !maps.Equal(got, props) {
			t.Fatalf("text %q:\ngot  %q\nwant %q", text, got, props)
		}
	})
}

// Any text that parses describes a map that survives formatting: the parser
// and the formatter agree on every input, not just formatted ones.
func TestPropertiesReparse(t *testing.T) {
	lineish := rapid.StringOf(rapid.OneOf(special, rapid.SampledFrom([]rune("\\\\\\\n\nab=:  "))))
	rapid.Check(t, func(t *rapid.T) {
		text := lineish.Draw(t, "text")
		props, _, err := ParseProperties(text)
		if err != nil {
			return // a malformed \u escape
		}
		again, _, err := ParseProperties(FormatProperties(props))
		if err != nil || !maps.Equal(again, props) {
			t.Fatalf("reparse of %q: %q, err=%v; want %q", text, again, err, props)
		}
	})
}
