// Package network is the simulated network between clients and nodes:
// connections carrying whole frames (one frame per send, as the port's Send
// is one response frame), per-link latency, jitter and bandwidth, in-order
// delivery within a connection, and the network faults: connection resets
// (both sides learn), partitions (a client cut off from a node; frames wait
// for the partition to heal, as TCP retransmits them) and slow links.
//
// A connection closed by either side, or reset, drops every frame still in
// flight in both directions: an abortive close, so a request a client gave
// up on can no longer reach the node afterwards. A frame that already
// reached the node is the node's: a paused node still handles it later.
package network
