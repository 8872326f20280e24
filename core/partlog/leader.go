package partlog

// StartEpoch records that leader epoch begins at the log end, before any
// batch of it is appended (Kafka's assignEpochStartOffset): a new leader
// must answer where older epochs end even while its own is empty. The
// entry lives in memory only; a restarted node leads again only in a newer
// epoch, which it records then.
func (l *Log) StartEpoch(epoch int32) { l.noteEpoch(epoch, l.end) }
