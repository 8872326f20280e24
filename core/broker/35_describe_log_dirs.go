package broker

// DescribeLogDirs v0-v4: the log directory and the size of each partition
// replica this broker holds in it (leader or follower), for kadm's
// DescribeBrokerLogDirs and kafka-log-dirs.sh. Weir has one log directory
// per broker. OffsetLag is 0: it measures a future replica (an intra-broker
// move) against the current one, and Weir has no future replicas. The
// directory's total and usable bytes (v4) are -1: the core does not see the
// file system.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleDescribeLogDirs(s *slot, req *kmsg.DescribeLogDirsRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = n.cfg.LogDirs[0]
	dir.TotalBytes, dir.UsableBytes = -1, -1
	if n.storageErr != nil {
		dir.ErrorCode = kerr.KafkaStorageError.Code
		resp.Dirs = append(resp.Dirs, dir)
		n.respond(s, resp)
		return
	}
	for _, t := range n.topics.sorted {
		// A nil topic list asks for everything; otherwise only the named
		// partitions of the named topics.
		var want []int32
		if req.Topics != nil {
			i := slices.IndexFunc(req.Topics, func(rt kmsg.DescribeLogDirsRequestTopic) bool { return rt.Topic == t.name })
			if i < 0 {
				continue
			}
			want = req.Topics[i].Partitions
		}
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = t.name
		for _, p := range t.visiblePartitions() {
			if p.log == nil || req.Topics != nil && !slices.Contains(want, p.index) {
				continue
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = p.index, p.log.Size()
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, rt)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	n.respond(s, resp)
}
