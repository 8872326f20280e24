package broker

// DescribeConfigs v0-v4 for topics and brokers.
//
// Values, sources (DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG,
// DEFAULT_CONFIG), synonyms (v1+), types and documentation (v3+) come from
// core/config's registry, in name order. Broker loggers are not
// describable: INVALID_REQUEST.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/config"
)

func (n *Node) handleDescribeConfigs(s *slot, req *kmsg.DescribeConfigsRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = r.ResourceType, r.ResourceName
		var entries []config.Entry
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := n.topics.visible(r.ResourceName)
			if t == nil {
				setErr(&out.ErrorCode, &out.ErrorMessage, kerr.UnknownTopicOrPartition, "topic "+r.ResourceName+" does not exist")
				break
			}
			entries = n.cfg.DescribeTopic(t.overrides, req.IncludeSynonyms)
		case kmsg.ConfigResourceTypeBroker:
			if r.ResourceName != strconv.Itoa(int(n.cfg.NodeID)) && r.ResourceName != "" {
				setErr(&out.ErrorCode, &out.ErrorMessage, kerr.InvalidRequest, "no broker "+r.ResourceName+" here")
				break
			}
			entries = n.cfg.DescribeBroker(req.IncludeSynonyms)
		default:
			setErr(&out.ErrorCode, &out.ErrorMessage, kerr.InvalidRequest, "unsupported resource type "+r.ResourceType.String())
		}
		for _, e := range entries {
			if r.ConfigNames != nil && !contains(r.ConfigNames, e.Name) {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ReadOnly, c.IsSensitive = e.Name, e.Value, e.ReadOnly, e.Sensitive
			c.Source = kmsg.ConfigSource(e.Source)
			c.IsDefault = e.Source == int8(kmsg.ConfigSourceDefaultConfig)
			c.ConfigType = kmsg.ConfigType(e.Type)
			if req.IncludeDocumentation {
				c.Documentation = e.Documentation
			}
			for _, syn := range e.Synonyms {
				cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				cs.Name, cs.Value, cs.Source = syn.Name, syn.Value, kmsg.ConfigSource(syn.Source)
				c.ConfigSynonyms = append(c.ConfigSynonyms, cs)
			}
			out.Configs = append(out.Configs, c)
		}
		resp.Resources = append(resp.Resources, out)
	}
	n.respond(s, resp)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
