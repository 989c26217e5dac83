package tests

import (
	"net"
	"testing"

	"github.com/keyturn/keyturn/internal/smtest"
)

// TestEmulatorTakenPort starts the emulator with one of its two ports
// already taken by another listener, as happens when a port is taken between
// freeAddr and the emulator's start. startEmulatorOn must start it again on
// new ports.
func TestEmulatorTakenPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		taken int // which pick is taken: 0 for invocations, 1 for the Runtime API
	}{
		{"invocations", 0},
		{"runtime API", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatalf("listen: %v", err)
			}
			t.Cleanup(func() { _ = taken.Close() })

			var picks []string
			pick := func(t *testing.T) string {
				addr := freeAddr(t)
				if len(picks) == tc.taken {
					addr = taken.Addr().String()
				}
				picks = append(picks, addr)
				return addr
			}
			e := startEmulatorOn(t, pick, rotatorBinary, nil)

			if len(picks) != 4 {
				t.Fatalf("emulator started on addresses %v, want 2 attempts of 2 addresses", picks)
			}
			if want := "http://" + picks[2] + smtest.InvocationsPath; e.URL != want {
				t.Errorf("emulator URL = %s, want %s on the second attempt's address", e.URL, want)
			}
			if !servesRuntimeAPI(picks[3]) {
				t.Errorf("emulator Runtime API does not serve %s", picks[3])
			}
		})
	}
}
