//go:build unix

package provider

import (
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestCheckConnectionRefused(t *testing.T) {
	addr := refusingAddr(t)
	c, logs := testChecker(Options{})
	res := check(t, c, logs, openAISettings("http://"+addr))
	if res.Class != Transient {
		t.Errorf("class = %s, want transient", res.Class)
	}
	if !strings.Contains(res.Reason, "no response") || res.Status != 0 {
		t.Errorf("reason = %q, status = %d, want no response and status 0", res.Reason, res.Status)
	}
}

// refusingAddr returns a loopback address that refuses connections. A
// socket is bound to its port but does not listen, so no other listener can
// take the port while the test runs, as one could take a port that a closed
// listener released.
func refusingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("create socket: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind socket to 127.0.0.1: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("read the bound address: %v", err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
