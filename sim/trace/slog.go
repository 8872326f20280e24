package trace

import (
	"context"
	"log/slog"
	"strings"
)

// Handler is a slog.Handler writing into a Trace under a component name.
// The record's time is ignored: the trace stamps virtual time.
type Handler struct {
	t         *Trace
	component string
	prefix    string // rendered attributes from WithAttrs
	group     string // dotted group prefix for later keys
}

// NewHandler returns a handler writing into t as component.
func NewHandler(t *Trace, component string) *Handler {
	return &Handler{t: t, component: component}
}

// Logger returns a slog.Logger writing into t as component.
func Logger(t *Trace, component string) *slog.Logger {
	return slog.New(NewHandler(t, component))
}

// Enabled records everything from Info up; Debug would drown the trace.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

// Handle renders the record as "LEVEL msg k=v ...".
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Level.String())
	sb.WriteByte(' ')
	sb.WriteString(r.Message)
	sb.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&sb, h.group, a)
		return true
	})
	h.t.Add(h.component, sb.String())
	return nil
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var sb strings.Builder
	sb.WriteString(h.prefix)
	for _, a := range attrs {
		appendAttr(&sb, h.group, a)
	}
	c := *h
	c.prefix = sb.String()
	return &c
}

// WithGroup returns a handler that qualifies later keys with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	return &c
}

func appendAttr(sb *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(sb, g, ga)
		}
		return
	}
	sb.WriteByte(' ')
	sb.WriteString(group)
	sb.WriteString(a.Key)
	sb.WriteByte('=')
	sb.WriteString(a.Value.String())
}
