package tests

import "testing"

// TestLoadRotationFileStore sends steady chat traffic, every other request
// streamed, through the router process while the real rotator CLI rotates
// the provider secret on the file store five times and then tries a key
// the stand-in rejects. After each rotation the stand-in revokes the
// previous key once the router serves the new version. No client request
// may fail.
func TestLoadRotationFileStore(t *testing.T) {
	t.Parallel()
	rw := newRouterWorld(t)
	newLoadWorld(rw, &fileRotation{rw: rw}).run()
}

// TestLoadRotationLambda is TestLoadRotationFileStore with the rotator
// running as the rotation function under the emulator, invoked by
// RotateSecret on the Secrets Manager test server, and the router reading
// the AWS store through that server.
func TestLoadRotationLambda(t *testing.T) {
	t.Parallel()
	rw := newLambdaRouterWorld(t)
	newLoadWorld(rw, lambdaRotation{w: rw.world}).run()
}
