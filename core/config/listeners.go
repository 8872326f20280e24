package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Listener is one NAME://host:port entry of listeners or advertised.listeners.
type Listener struct {
	Name             string // upper case, as Kafka normalises listener names
	Host             string // empty: all interfaces (or, advertised, the driver's host name)
	Port             int    // 0 in listeners: an ephemeral port
	SecurityProtocol string // from listener.security.protocol.map
}

// String renders l as Kafka writes it, bracketing IPv6 hosts.
func (l Listener) String() string {
	return l.Name + "://" + joinHostPort(l.Host, l.Port)
}

// Voter is one id@host:port entry of controller.quorum.voters.
type Voter struct {
	ID   int32
	Host string
	Port int
}

func (v Voter) String() string { return itoa(v.ID) + "@" + joinHostPort(v.Host, v.Port) }

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// splitHostPort parses host:port or [ipv6]:port. The host may be empty.
func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("%q has no port", s)
	}
	host, portText := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.ContainsAny(host, "[]:") {
		return "", 0, fmt.Errorf("%q: IPv6 hosts must be in brackets", s)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port must be a number from 0 to 65535", s)
	}
	return host, port, nil
}

// parseListeners parses a listeners value. Security protocols are filled in
// later, once the protocol map is known.
func parseListeners(s string) ([]Listener, error) {
	var out []Listener
	for _, e := range splitCSV(s) {
		name, addr, ok := strings.Cut(e, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not of the form NAME://host:port", e)
		}
		host, port, err := splitHostPort(addr)
		if err != nil {
			return nil, err
		}
		l := Listener{Name: strings.ToUpper(name), Host: host, Port: port}
		for _, prev := range out {
			if prev.Name == l.Name {
				return nil, fmt.Errorf("listener name %s appears twice; each listener must have a different name", l.Name)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

func validListeners(v any) error { _, err := parseListeners(v.(string)); return err }

// parseProtocolMap parses NAME:PROTOCOL pairs into a name → protocol map.
func parseProtocolMap(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, e := range splitCSV(s) {
		name, proto, ok := strings.Cut(e, ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not of the form NAME:PROTOCOL", e)
		}
		if !slices.Contains(securityProtocols, proto) {
			return nil, fmt.Errorf("%q: unknown security protocol %s (valid: %s)", e, proto, strings.Join(securityProtocols, ", "))
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("listener name %s is mapped twice", name)
		}
		m[name] = proto
	}
	return m, nil
}

func validProtocolMap(v any) error { _, err := parseProtocolMap(v.(string)); return err }

func parseVoters(l []string) ([]Voter, error) {
	var out []Voter
	for _, e := range l {
		id, addr, ok := strings.Cut(e, "@")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not of the form id@host:port", e)
		}
		host, port, err := splitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if host == "" {
			return nil, fmt.Errorf("%q has no host", e)
		}
		for _, prev := range out {
			if prev.ID == int32(n) {
				return nil, fmt.Errorf("voter id %d appears twice", n)
			}
		}
		out = append(out, Voter{ID: int32(n), Host: host, Port: port})
	}
	return out, nil
}

func validVoters(v any) error { _, err := parseVoters(v.([]string)); return err }

func validHostPorts(v any) error {
	for _, e := range v.([]string) {
		host, _, err := splitHostPort(e)
		if err == nil && host == "" {
			err = fmt.Errorf("%q has no host", e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// validNames accepts a comma-separated list of non-empty names.
func validNames(v any) error {
	for _, n := range splitList(v.(string)) {
		if n == "" {
			return errors.New("empty name in list")
		}
	}
	return nil
}

func validDirs(v any) error {
	if len(splitCSV(v.(string))) == 0 {
		return errors.New("value must name at least one directory")
	}
	return nil
}

// validClusterID accepts what Kafka's storage tool accepts: a UUID in
// 22 characters of unpadded URL-safe base64.
func validClusterID(v any) error {
	b, err := base64.RawURLEncoding.DecodeString(v.(string))
	if err != nil || len(b) != 16 {
		return errors.New("value must be a UUID in 22 characters of URL-safe base64 (as from kafka-storage random-uuid)")
	}
	return nil
}

// splitCSV splits a comma-separated STRING value into its trimmed, non-empty
// elements, as Kafka's csvList does for log.dirs and listeners.
func splitCSV(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
