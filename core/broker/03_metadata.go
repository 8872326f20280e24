package broker

// Metadata v0-v12.
//
// This node leads every partition (one-node cluster): leader epoch 0,
// replicas and ISR are this node. Topics are auto-created as Kafka does when
// auto.create.topics.enable is set and the client allows it (v4+); such a
// topic answers LEADER_NOT_AVAILABLE until its metadata is durable. Topics
// are listed in name order. Authorized-operations fields are not computed
// (no ACLs yet) and carry Kafka's "not requested" value.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const authorizedOpsOmitted = -2147483648

func (n *Node) handleMetadata(s *slot, req *kmsg.MetadataRequest) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = n.brokers()
	resp.ClusterID = &n.meta.image.ClusterID
	resp.ControllerID = n.cfg.NodeID
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
		} else if autoCreate && validTopicName(*rt.Topic) == nil {
			mt.ErrorCode = n.autoCreate(*rt.Topic).Code
		}
		mt.AuthorizedOperations = authorizedOpsOmitted
		resp.Topics = append(resp.Topics, mt)
	}
	n.respond(s, resp)
}

// autoCreate starts creating a topic with the broker's defaults and tells
// the client to come back: LEADER_NOT_AVAILABLE, as Kafka answers.
func (n *Node) autoCreate(name string) *kerr.Error {
	if n.topics.byName[name] != nil || n.deleting[name] != nil {
		return kerr.LeaderNotAvailable // being created, or the old one still being removed
	}
	if n.storageErr != nil {
		return kerr.KafkaStorageError
	}
	if _, err := n.createTopic(name, n.cfg.NumPartitions, nil, nil); err != nil {
		return kerr.UnknownServerError
	}
	return kerr.LeaderNotAvailable
}

func (n *Node) brokers() []kmsg.MetadataResponseBroker {
	l := n.cfg.AdvertisedListeners[0]
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = n.cfg.NodeID, l.Host, int32(l.Port)
	if n.cfg.Rack != "" {
		b.Rack = &n.cfg.Rack
	}
	return []kmsg.MetadataResponseBroker{b}
}

func (n *Node) metadataTopic(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = &t.name
	mt.TopicID = t.id
	mt.AuthorizedOperations = authorizedOpsOmitted
	for _, p := range t.visiblePartitions() {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.index
		mp.Leader = n.cfg.NodeID
		mp.LeaderEpoch = 0
		mp.Replicas = []int32{n.cfg.NodeID}
		mp.ISR = []int32{n.cfg.NodeID}
		if n.storageErr != nil {
			mp.ErrorCode = kerr.KafkaStorageError.Code
			mp.OfflineReplicas = []int32{n.cfg.NodeID}
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
