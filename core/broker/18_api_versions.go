package broker

// ApiVersions v0-v4.
//
// A request at a version above v4 gets the v0 fallback (KIP-511):
// UNSUPPORTED_VERSION with our ranges, so the client retries at a version we
// speak. Client software name and version are checked as Kafka checks them.

import (
	"maps"
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/wire"
)

// supported is every API this node serves, by key, with its versions.
var supported = map[int16]wire.VersionRange{
	kmsg.Produce.Int16():                    {Min: 3, Max: 11},
	kmsg.Fetch.Int16():                      {Min: 4, Max: 16},
	kmsg.ListOffsets.Int16():                {Min: 1, Max: 8},
	kmsg.Metadata.Int16():                   {Min: 0, Max: 12},
	kmsg.ApiVersions.Int16():                {Min: 0, Max: 4},
	kmsg.CreateTopics.Int16():               {Min: 2, Max: 7},
	kmsg.DeleteTopics.Int16():               {Min: 1, Max: 6},
	kmsg.InitProducerID.Int16():             {Min: 0, Max: 4},
	kmsg.DescribeConfigs.Int16():            {Min: 0, Max: 4},
	kmsg.CreatePartitions.Int16():           {Min: 0, Max: 3},
	kmsg.DescribeCluster.Int16():            {Min: 0, Max: 1},
	kmsg.ElectLeaders.Int16():               {Min: 0, Max: 2},
	kmsg.OffsetForLeaderEpoch.Int16():       {Min: 0, Max: 4},
	kmsg.OffsetCommit.Int16():               {Min: 2, Max: 9},
	kmsg.OffsetFetch.Int16():                {Min: 1, Max: 9},
	kmsg.FindCoordinator.Int16():            {Min: 0, Max: 5},
	kmsg.JoinGroup.Int16():                  {Min: 0, Max: 9},
	kmsg.Heartbeat.Int16():                  {Min: 0, Max: 4},
	kmsg.LeaveGroup.Int16():                 {Min: 0, Max: 5},
	kmsg.SyncGroup.Int16():                  {Min: 0, Max: 5},
	kmsg.DescribeGroups.Int16():             {Min: 0, Max: 5},
	kmsg.ListGroups.Int16():                 {Min: 0, Max: 5},
	kmsg.DeleteGroups.Int16():               {Min: 0, Max: 2},
	kmsg.OffsetDelete.Int16():               {Min: 0, Max: 0},
	kmsg.ConsumerGroupHeartbeat.Int16():     {Min: 0, Max: 1},
	kmsg.ConsumerGroupDescribe.Int16():      {Min: 0, Max: 1},
	kmsg.DescribeLogDirs.Int16():            {Min: 0, Max: 4},
	kmsg.AlterPartitionAssignments.Int16():  {Min: 0, Max: 1},
	kmsg.ListPartitionReassignments.Int16(): {Min: 0, Max: 0},
}

// Supported is the wire.Supported of this broker: drivers pass it to
// wire.ParseRequest so unsupported requests never reach a handler.
func Supported(key int16) (wire.VersionRange, bool) {
	r, ok := supported[key]
	return r, ok
}

// supportedKeys lists the served keys in ascending order.
func supportedKeys() []int16 { return slices.Sorted(maps.Keys(supported)) }

var clientSoftwarePattern = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (n *Node) handleAPIVersions(s *slot, req *kmsg.ApiVersionsRequest) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (!clientSoftwarePattern.MatchString(req.ClientSoftwareName) ||
		!clientSoftwarePattern.MatchString(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		n.respond(s, resp)
		return
	}
	for _, k := range supportedKeys() {
		r := supported[k]
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: r.Min, MaxVersion: r.Max})
	}
	n.respond(s, resp)
}
