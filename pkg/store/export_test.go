package store

// SavepointRetries returns how many batches were applied a second time with savepoints.
func (s *Store) SavepointRetries() int64 { return s.savepointRetries.Load() }
