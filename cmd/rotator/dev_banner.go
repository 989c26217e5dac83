package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/schedule"
)

// devIdentityFile is the file store's default identity in its directory,
// which dev's store uses.
const devIdentityFile = "identity.age"

// devCurlBody is the request of the banner's curl command.
const devCurlBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`

// printDevBanner prints what dev runs and how to use it. It names the
// client key's file and never prints the key.
func (a *app) printDevBanner(f *devFlags, baseURL, routerURL, keyFile string) {
	models := slices.Sorted(slices.Values(devModels))
	fmt.Fprintf(a.stdout, `keyturn dev
  store           %s
  stand-in        %s (OpenAI shape at %s/openai/v1)
  secret          %s (issuer dev, admin key in %s)
  rotation        every %s, starting now; each old key is revoked %s after its replacement starts
  router          %s/v1 (models %s)
  client key      %s (client %q in %s, mode 0600)
Send a request through the router:
  %s
Inspect it from another shell:
  %s
Press Ctrl-C to stop.
`, f.dir, baseURL, baseURL, devSecretID, devIssuerID,
		schedule.FormatDuration(f.interval), schedule.FormatDuration(f.grace),
		routerURL, strings.Join(models, ", "),
		keyFile, devClientName, clientkeys.DefaultSecretID,
		devCurlCommand(routerURL, keyFile),
		a.devStatusCommand(f.dir))
}

// devStatusCommand returns the rotator status command for dev/openai in
// dir. It names dir's identity too when KEYTURN_IDENTITY or the config
// file would point the command at another one, which cannot decrypt dev's
// store.
func (a *app) devStatusCommand(dir string) string {
	env := "KEYTURN_STORE=" + shellQuote("file://"+dir)
	identity := filepath.Join(dir, devIdentityFile)
	if other := a.configuredIdentity(); other != "" && other != identity {
		env += " KEYTURN_IDENTITY=" + shellQuote(identity)
	}
	return env + " rotator status " + devSecretID
}

// configuredIdentity returns the identity that KEYTURN_IDENTITY or the
// config file sets for other commands, or "" when neither does. A config
// file that cannot be read counts as setting none: the command dev prints
// reports it when run.
func (a *app) configuredIdentity() string {
	if id := a.getenv("KEYTURN_IDENTITY"); id != "" {
		return id
	}
	cfg, _, err := a.loadConfig()
	if err != nil {
		return ""
	}
	return cfg.Identity
}

// devCurlCommand returns a curl command line that sends devCurlBody
// through the router with the key read from keyFile.
func devCurlCommand(routerURL, keyFile string) string {
	return "curl -sS " + routerURL + "/v1/chat/completions" +
		` -H "Authorization: Bearer $(cat ` + shellQuote(keyFile) + `)"` +
		` -H 'Content-Type: application/json'` +
		` -d '` + devCurlBody + `'`
}

// shellSafe matches the words a POSIX shell reads as they are.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@%+,-]+$`)

// shellQuote quotes s for a POSIX shell when it has characters the shell
// would interpret, such as a space.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
