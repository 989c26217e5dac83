package tests

import "testing"

// TestLoadRotationFileStore sends steady chat traffic, every other request
// streamed, through two router processes on the file store while the real
// rotator CLI rotates the provider secret five times and then tries a key
// the stand-in rejects. Each previous key is revoked at the stand-in once
// the router refreshing every second serves the newer version. That router
// proves that a router following the store by its refresh fails no request
// across a rotation. The other router refreshes every hour, so it still
// sends the revoked key. It proves that the stand-in's 401 makes a router
// re-read the secret and retry with the new key, in every rotation and
// without failing a client request. It also proves that the router's key
// rejections counter matches the 401s the stand-in sent it. No client
// request through either router may fail.
func TestLoadRotationFileStore(t *testing.T) {
	t.Parallel()
	rw := newRouterWorld(t)
	newLoadWorld(rw, &fileRotation{rw: rw}).run()
}

// TestLoadRotationLambda is TestLoadRotationFileStore with the rotator
// running as the rotation function under the emulator, invoked by
// RotateSecret on the Secrets Manager test server, and both routers
// reading the AWS store through that server.
func TestLoadRotationLambda(t *testing.T) {
	t.Parallel()
	rw := newLambdaRouterWorld(t)
	newLoadWorld(rw, lambdaRotation{w: rw.world}).run()
}
