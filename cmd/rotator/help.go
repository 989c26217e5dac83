package main

import (
	"fmt"
	"io"
)

const helpHeader = `rotator rotates the API keys applications use to call AI providers, and
proves each new key works against the provider before promoting it.

Usage: rotator COMMAND [SECRET] [flags]

Commands:
`

const helpFooter = `
Run 'rotator COMMAND -h' for a command's flags and an example.

Store selection (first set wins):
  --store URL, then $KEYTURN_STORE, then 'store:' in the config file, then
  file://$XDG_DATA_HOME/keyturn/store (~/.local/share/keyturn/store).
  URL forms:
    file:///ABSOLUTE/DIR   the age-encrypted file store in DIR (no host, no
                           relative paths: use file://$PWD/store)
    aws://REGION           AWS Secrets Manager in REGION, such as aws://us-east-1
    aws://                 AWS Secrets Manager in the AWS SDK's default region
  add, update and serve work on the file store only; on AWS, Terraform
  manages secrets and Secrets Manager runs the schedules.
  The file store's age identity: --identity FILE, $KEYTURN_IDENTITY or
  'identity:' in the config file; default DIR/identity.age, created on first use.

Where keys may be sent: each provider's own host over https. Add hosts of
OpenAI-compatible relays with --relay-host HOST (repeatable),
$KEYTURN_RELAY_HOSTS (comma-separated) or 'relay_hosts:' in the config file.
Provider URLs on your own machine, such as http://127.0.0.1:8080/v1, need
--allow-loopback or KEYTURN_ALLOW_LOOPBACK=true (tests and development
only). Use 127.0.0.1: tag values cannot hold the brackets of an IPv6 URL.

Router clients: 'rotator client add NAME' issues a key (kt-...) that a client
uses to call the router, and shows it only once. The store keeps only the
key's SHA-256 hash, in the secret keyturn/router-clients. 'rotator client
list' shows the clients, 'rotator client revoke' removes one, and 'rotator
client disable' and 'enable' turn a client's key off and on; all of them
work on either store, and none creates a store.

Output: results go to stdout, as text or, with --output json, one JSON
object; errors and hints always go to stderr.

Config file: $KEYTURN_CONFIG, or $XDG_CONFIG_HOME/keyturn/rotator.yaml
(~/.config/keyturn/rotator.yaml). YAML with the keys store, identity and
relay_hosts (a list); any other key is an error. Example:
  store: file:///var/lib/keyturn/store
  relay_hosts: [relay.example.com]

Exit codes:
  0    success; for rotate-now, the new key was promoted
  1    error
  2    usage error (unknown command or flag, missing argument, bad flag value)
  3    rejected: the provider rejected the key
  4    transient failure (timeout, rate limit, outage, store unreachable):
       retry later
  5    rotation in progress
  130  interrupted by Ctrl-C (128 plus the signal number: 143 for SIGTERM);
       serve and dev stop cleanly on a signal and exit 0

When AWS_LAMBDA_RUNTIME_API is set, rotator runs as the Secrets Manager
rotation Lambda instead, configured by AWS_REGION and KEYTURN_RELAY_HOSTS,
and for tests by KEYTURN_ALLOW_LOOPBACK and KEYTURN_DEV_ISSUER_URL.

Try it locally:
  rotator dev
`

func (a *app) printHelp(w io.Writer) {
	fmt.Fprint(w, helpHeader)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, helpFooter)
}
