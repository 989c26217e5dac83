package router

import "time"

// Bounds of the re-read of the clients secret that an unknown client key
// forces.
const (
	// DefaultRereadInterval is the least time between two forced reads of
	// the clients secret. Keys that no client has cannot make the router
	// read its store more often than this, however many arrive.
	DefaultRereadInterval = time.Second
	// rereadTimeout bounds one forced read, for every request waiting on
	// it.
	rereadTimeout = 5 * time.Second
	// rereadMaxWait is the longest a request waits for the next forced
	// read to start.
	rereadMaxWait = 2 * time.Second
)
