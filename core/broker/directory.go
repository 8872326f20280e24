package broker

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/weirmq/weir/core/metalog"
	"github.com/weirmq/weir/core/port"
)

// The log directory's identity, as Kafka's meta.properties keeps it
// (KIP-858): directory.id is drawn when the directory is first used and
// never changes, so a disk that was wiped or replaced comes back with
// another id. The broker registers with it, and the controller takes a
// changed id for a lost disk: such a broker no longer holds the records it
// acknowledged, and must not lead or count as an eligible leader (see the
// controller's register).
//
// Unlike Kafka, Weir writes the file itself at first boot (there is no
// kafka-storage.sh format step), and without cluster.id, which it learns
// from the metadata quorum.

const (
	metaPropertiesFile = "meta.properties"
	metaPropertiesTmp  = metaPropertiesFile + ".tmp"
)

// bootDirectory reads the directory id from meta.properties, or draws a
// new one for a directory without it, and queues the ops that make the
// file durable before the broker registers with it (register waits for
// the boot ops; see bootSynced). A file written whole but not yet synced
// by the previous process is synced again rather than trusted. A file of
// another node means the directory was handed to the wrong node: boot
// fails, as Kafka's does.
func (n *Node) bootDirectory(fs port.BootFS) error {
	props, found, err := readMetaProperties(fs)
	if err != nil {
		return err
	}
	if found {
		if id, ok := props["node.id"]; ok && id != strconv.Itoa(int(n.cfg.NodeID)) {
			return fmt.Errorf("%s: node.id %s, but this node is %d", metaPropertiesFile, id, n.cfg.NodeID)
		}
		if b, err := base64.RawURLEncoding.DecodeString(props["directory.id"]); err == nil && len(b) == 16 {
			copy(n.cluster.directory[:], b)
			n.queueCluster([]port.DiskOp{
				{Kind: port.OpSync, Lane: metalog.Lane, Path: metaPropertiesFile},
				{Kind: port.OpSyncDir, Lane: metalog.Lane, Path: "."},
			})
			return nil
		}
	}
	// A new (or wiped) directory. A file without a readable id cannot
	// have been registered: it is written through a rename, whole.
	// A temporary file a crash left behind is removed first, so that no
	// tail of it outlives the write.
	n.cluster.directory = n.newUUID()
	id := base64.RawURLEncoding.EncodeToString(n.cluster.directory[:])
	n.log.Info("new log directory", "directory_id", id)
	data := fmt.Sprintf("#\nnode.id=%d\ndirectory.id=%s\nversion=1\n", n.cfg.NodeID, id)
	n.queueCluster([]port.DiskOp{
		{Kind: port.OpRemove, Lane: metalog.Lane, Path: metaPropertiesTmp},
		{Kind: port.OpWrite, Lane: metalog.Lane, Path: metaPropertiesTmp, Data: []byte(data)},
		{Kind: port.OpSync, Lane: metalog.Lane, Path: metaPropertiesTmp},
		{Kind: port.OpRename, Lane: metalog.Lane, Path: metaPropertiesTmp, To: metaPropertiesFile},
		{Kind: port.OpSyncDir, Lane: metalog.Lane, Path: "."},
	})
	return nil
}

// readMetaProperties returns the keys of meta.properties, and whether the
// file exists.
func readMetaProperties(fs port.BootFS) (map[string]string, bool, error) {
	entries, err := fs.List(".")
	if err != nil {
		return nil, false, err
	}
	i := slices.IndexFunc(entries, func(e port.DirEntry) bool { return e.Name == metaPropertiesFile && !e.IsDir })
	if i < 0 {
		return nil, false, nil
	}
	buf := make([]byte, entries[i].Size)
	if k, err := fs.ReadAt(metaPropertiesFile, buf, 0); err != nil && !(errors.Is(err, io.EOF) && k == len(buf)) {
		return nil, false, fmt.Errorf("read %s: %w", metaPropertiesFile, err)
	}
	props := map[string]string{}
	for _, line := range strings.Split(string(buf), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			props[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return props, true, nil
}
