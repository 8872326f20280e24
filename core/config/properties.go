package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseProperties parses text in the format of java.util.Properties.load,
// the format of Kafka's server.properties:
//
//   - lines end in \n, \r or \r\n; leading spaces, tabs and form feeds are
//     skipped; blank lines and lines starting with # or ! are comments;
//   - the key ends at the first unescaped '=', ':' or whitespace; whitespace
//     and one '=' or ':' after it are skipped; the rest of the line is the
//     value, trailing whitespace included (Kafka trims it when it parses
//     the value; NewBroker does too);
//   - a line ending in an odd number of backslashes continues on the next
//     line, whose leading whitespace is skipped;
//   - in keys and values \t \n \r \f and \uXXXX are escapes (UTF-16
//     surrogate pairs are joined), and a backslash before any other
//     character stands for that character.
//
// The text is taken as UTF-8, like Properties.load(Reader); bytes that are
// not UTF-8 are kept as they are. A leading byte-order mark, which editors on
// Windows add and which would otherwise end up in the first key, is dropped.
//
// Warnings, in line order, report what Java accepts silently but is likely
// a mistake: a key set twice (the later value wins, as in Java) and an
// unpaired UTF-16 surrogate (replaced by U+FFFD). The only error is a
// malformed \uXXXX escape, which Java rejects too; it names the line.
func ParseProperties(text string) (map[string]string, []string, error) {
	props := map[string]string{}
	firstSet := map[string]int{} // key → line that first set it
	var warnings []string
	lines := naturalLines(strings.TrimPrefix(text, "\uFEFF"))
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := trimLeadingSpace(lines[i])
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for endsInContinuation(line) {
			line = line[:len(line)-1]
			if i+1 == len(lines) {
				break // as in Java, a backslash ending the text is dropped
			}
			i++
			line += trimLeadingSpace(lines[i])
		}
		rawKey, rawValue := splitKeyValue(line)
		key, loneK, err := unescape(rawKey)
		if err != nil {
			return nil, warnings, fmt.Errorf("line %d: %w", lineNo, err)
		}
		value, loneV, err := unescape(rawValue)
		if err != nil {
			return nil, warnings, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if loneK || loneV {
			warnings = append(warnings, fmt.Sprintf("line %d: unpaired UTF-16 surrogate escape replaced by U+FFFD", lineNo))
		}
		if first, dup := firstSet[key]; dup {
			warnings = append(warnings, fmt.Sprintf("line %d: %q was already set on line %d; the later value wins", lineNo, key, first))
		} else {
			firstSet[key] = lineNo
		}
		props[key] = value
	}
	return props, warnings, nil
}

// naturalLines splits text at \n, \r and \r\n.
func naturalLines(text string) []string {
	var lines []string
	for len(text) > 0 {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			lines = append(lines, text)
			break
		}
		lines = append(lines, text[:i])
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
	return lines
}

// isSpace is the whitespace of the properties format (not \v, not \n).
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

func trimLeadingSpace(s string) string {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[i:]
}

// endsInContinuation reports an odd number of trailing backslashes: an even
// number are escaped backslashes.
func endsInContinuation(s string) bool {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits a logical line, still escaped, into key and value.
func splitKeyValue(line string) (key, value string) {
	i := 0
	for i < len(line) {
		c := line[i]
		if c == '\\' {
			i += 2 // the escaped character cannot end the key
			continue
		}
		if c == '=' || c == ':' || isSpace(c) {
			break
		}
		i++
	}
	i = min(i, len(line))
	rest := trimLeadingSpace(line[i:])
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = trimLeadingSpace(rest[1:])
	}
	return line[:i], rest
}

// unescape resolves the escapes of a key or value. lone reports an unpaired
// surrogate, which Go strings cannot hold and which becomes U+FFFD.
func unescape(s string) (out string, lone bool, err error) {
	if !strings.Contains(s, `\`) {
		return s, false, nil
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			sb.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			break
		}
		switch c := s[i]; c {
		case 't':
			sb.WriteByte('\t')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 'f':
			sb.WriteByte('\f')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return "", false, fmt.Errorf(`malformed \uxxxx escape %q`, s[i-1:min(i+5, len(s))])
			}
			i += 4
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by an escaped low one is one
				// character beyond the BMP, e.g. an emoji.
				if r < 0xDC00 && strings.HasPrefix(s[i+1:], `\u`) {
					if r2, ok := hex4(s, i+3); ok && r2 >= 0xDC00 && r2 < 0xE000 {
						r = utf16.DecodeRune(r, r2)
						i += 6
					}
				}
				if utf16.IsSurrogate(r) {
					r, lone = utf8.RuneError, true
				}
			}
			sb.WriteRune(r)
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String(), lone, nil
}

// hex4 decodes the four hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i:i+4], 16, 16)
	return rune(n), err == nil
}

// FormatProperties writes props as a properties file, one key=value line per
// key in key order, such that ParseProperties returns props again. Like
// Properties.store it writes only ASCII (other characters as \uXXXX), so
// Java's Properties.load, which reads ISO-8859-1, agrees; bytes that are not
// UTF-8 are the exception and are written as they are.
func FormatProperties(props map[string]string) string {
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		writeEscaped(&sb, k, true)
		sb.WriteByte('=')
		writeEscaped(&sb, props[k], false)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// writeEscaped escapes what the parser would otherwise take apart: in keys
// the separators and the comment markers; in values only a leading space,
// which the parser would skip.
func writeEscaped(sb *strings.Builder, s string, isKey bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			sb.WriteByte(s[i])
		case r == '\\':
			sb.WriteString(`\\`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\f':
			sb.WriteString(`\f`)
		case r == ' ' && (isKey || i == 0):
			sb.WriteString(`\ `)
		case isKey && (r == '=' || r == ':' || r == '#' || r == '!'):
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r < 0x20 || r >= 0x7f:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(sb, `\u%04X`, u)
			}
		default:
			sb.WriteRune(r)
		}
		i += size
	}
}
