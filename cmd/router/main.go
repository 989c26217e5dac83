// Command router is keyturn's OpenAI-compatible router: it forwards client
// requests to AI providers with the current key of each provider secret,
// read from the keystore at run time. This build does not contain the router
// yet, so the command prints an error and exits with status 1.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "router: error: the keyturn router is not built yet in this version")
	fmt.Fprintln(os.Stderr, "router: hint: rotate keys with the rotator command; see rotator help")
	os.Exit(1)
}
