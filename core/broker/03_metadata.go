package broker

// Metadata v0-v12, served from the committed metadata image.
//
// Brokers are the registered, unfenced ones, at their endpoint for this
// node's first advertised listener. A partition without a leader answers
// LEADER_NOT_AVAILABLE; replicas on fenced brokers are offline. Topics are
// auto-created, through the controller, as Kafka does when
// auto.create.topics.enable is set and the client allows it (v4+); the
// client is told LEADER_NOT_AVAILABLE and comes back. Topics are listed in
// name order. Authorized-operations fields are not computed (no ACLs yet)
// and carry Kafka's "not requested" value.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/controller"
	"github.com/weirmq/weir/core/port"
)

const authorizedOpsOmitted = -2147483648

func (n *Node) handleMetadata(s *slot, req *kmsg.MetadataRequest) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = n.brokers()
	cid := n.cluster.image.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = n.controllerID(resp.Brokers)
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		for _, t := range n.topics.sorted {
			if t.visible {
				resp.Topics = append(resp.Topics, n.metadataTopic(t))
			}
		}
		n.respond(s, resp)
		return
	}
	autoCreate := n.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *topic
		if rt.Topic != nil {
			t = n.topics.visible(*rt.Topic)
		} else {
			t = n.topics.visibleByID(rt.TopicID)
		}
		if t != nil {
			resp.Topics = append(resp.Topics, n.metadataTopic(t))
			continue
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if rt.Topic == nil {
			mt.ErrorCode = kerr.UnknownTopicID.Code
		} else if autoCreate && controller.ValidTopicName(*rt.Topic) == nil {
			n.autoCreate(*rt.Topic)
			mt.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.AuthorizedOperations = authorizedOpsOmitted
		resp.Topics = append(resp.Topics, mt)
	}
	n.respond(s, resp)
}

// autoCreate asks the controller to create a topic with the defaults; the
// client comes back for it, so the outcome is only logged.
func (n *Node) autoCreate(name string) {
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	n.callController(req, func(kr kmsg.Response, err error) {
		if err == nil {
			err = kerr.ErrorForCode(kr.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
		}
		if err != nil && err != kerr.TopicAlreadyExists {
			n.log.Debug("auto-creating a topic failed", "topic", name, "err", err)
		}
	})
}

// controllerID is the controller clients are told of: the Raft leader when
// it is a broker they can reach, else (a controller-only leader, or none
// known) the first live broker, which forwards controller requests, as
// KRaft brokers name a random live broker.
func (n *Node) controllerID(brokers []kmsg.MetadataResponseBroker) int32 {
	lead := int32(n.cluster.raft.Leader())
	for _, b := range brokers {
		if b.NodeID == lead {
			return lead
		}
	}
	if len(brokers) > 0 {
		return brokers[0].NodeID
	}
	return -1
}

// brokers lists the unfenced brokers at the endpoint of this node's
// first advertised listener.
func (n *Node) brokers() []kmsg.MetadataResponseBroker {
	listener := n.cfg.AdvertisedListeners[0].Name
	var out []kmsg.MetadataResponseBroker
	for _, b := range n.cluster.image.Brokers() {
		if b.Fenced {
			continue
		}
		for _, e := range b.Endpoints {
			if e.Listener != listener {
				continue
			}
			mb := kmsg.NewMetadataResponseBroker()
			mb.NodeID, mb.Host, mb.Port = int32(b.ID), e.Host, e.Port
			if b.Rack != "" {
				rack := b.Rack
				mb.Rack = &rack
			}
			out = append(out, mb)
		}
	}
	return out
}

func (n *Node) metadataTopic(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = &t.name
	mt.TopicID = t.id
	mt.IsInternal = t.name == offsetsTopic
	mt.AuthorizedOperations = authorizedOpsOmitted
	for _, p := range t.visiblePartitions() {
		st := p.state
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.index
		mp.Leader, mp.LeaderEpoch = int32(st.Leader), st.LeaderEpoch
		mp.Replicas, mp.ISR = nodeIDs(st.Replicas), nodeIDs(st.ISR)
		for _, r := range st.Replicas {
			if b, ok := n.cluster.image.Broker(r); !ok || b.Fenced {
				mp.OfflineReplicas = append(mp.OfflineReplicas, int32(r))
			}
		}
		switch {
		case st.Leader == n.cluster.self && n.storageErr != nil:
			mp.ErrorCode = kerr.KafkaStorageError.Code
		case st.Leader == -1:
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

func nodeIDs(ids []port.NodeID) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
