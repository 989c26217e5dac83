package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/storeurl"
	"github.com/keyturn/keyturn/keystore"
)

const stageUsage = `
Usage: rotator stage SECRET [--file PATH|-] [--key-id ID] [--validate]

Stores the next key of SECRET under KEYTURN_STAGED, for the next rotation to
prove and promote. The key is read from a file or standard input, never from
a flag: either the bare key on one line, or a full value JSON object such as
{"api_key": "sk-...", "key_id": "key_abc"}. Prints the staged version id,
never the key. It reports when it replaces a key staged before, which no
rotation will use then, unless the rotation in progress took it already.

A key is rejected before anything is stored when it cannot be a provider
key: a NAME=VALUE line from a .env file, a key in quotes, one shorter than
8 characters, or one with spaces or control characters.

With --validate the key is checked against the provider first; a rejected
key is not staged and the exit code is 3.

Example:
  rotator stage prod/openai --file new-key.txt --validate
  pbpaste | rotator stage prod/openai
`

// maxKeyIDLen is the longest key id stage accepts.
const maxKeyIDLen = 128

// checkKeyID rejects a key id that no provider issues: one with
// whitespace or characters outside visible ASCII, or one longer than
// maxKeyIDLen. fromFlag reports whether it came from --key-id, which makes
// it a usage error, or from the value's key_id.
func checkKeyID(id string, fromFlag bool) error {
	problem := keyIDProblem(id)
	switch {
	case problem == "":
		return nil
	case fromFlag:
		return cli.Usagef("stage: --key-id %s", problem)
	}
	return cli.WithCode(exitError, fmt.Errorf("stage: the value's key_id %s", problem))
}

func keyIDProblem(id string) string {
	if len(id) > maxKeyIDLen {
		return fmt.Sprintf("is %d characters long: a key id has 1 to %d", len(id), maxKeyIDLen)
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return fmt.Sprintf("%q has a space or a character outside visible ASCII: a key id is 1 to %d visible ASCII characters, such as key_abc",
				id, maxKeyIDLen)
		}
	}
	return ""
}

// maxValueBytes is Secrets Manager's limit on a SecretString.
const maxValueBytes = 65536

type stageFlags struct {
	storeFlags
	output   outputFlag
	file     string
	keyID    string
	validate bool
}

func (a *app) stage(ctx context.Context, args []string) error {
	f := stageFlags{output: outputText}
	fs := a.newFlagSet("stage", stageUsage)
	f.register(fs)
	f.output.register(fs)
	fs.StringVar(&f.file, "file", "-", "`PATH` of the file holding the key or value JSON; - reads standard input")
	fs.StringVar(&f.keyID, "key-id", "", "the provider's `ID` for the key (such as key_abc), kept to revoke it later")
	fs.BoolVar(&f.validate, "validate", false, "check the key with the provider before staging it")
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	secretID, err := oneSecretArg("stage", positional)
	if err != nil {
		return err
	}
	return a.runStage(ctx, secretID, &f)
}

func (a *app) runStage(ctx context.Context, secretID string, f *stageFlags) error {
	s, err := a.resolve(&f.storeFlags)
	if err != nil {
		return err
	}
	value, err := a.readValue(f.file)
	if err != nil {
		return err
	}
	if f.keyID != "" {
		value.KeyID = f.keyID
	}
	if err := checkKeyID(value.KeyID, f.keyID != ""); err != nil {
		return err
	}
	store, closeStore, err := a.openStore(ctx, s, false)
	if err != nil {
		return err
	}
	defer closeStore()
	engine, err := newEngine(store, s, a.getenv, a.stderrLogger(slog.LevelWarn))
	if err != nil {
		return err
	}
	// NOTE: the staged version read before and after the write shows which
	// version this stage replaced and whether another has replaced it
	// since. Two stages that run at once may both name the same earlier
	// version as replaced, but the later read shows which one stays.
	before, pending := stagedVersionOf(ctx, store, secretID), pendingVersionOf(ctx, store, secretID)
	res, err := engine.StageValue(ctx, secretID, value, f.validate)
	if err != nil && interrupted(ctx) {
		return cli.WithCode(cli.InterruptedCode(ctx), fmt.Errorf("interrupted: stage %s: stopped before the key was stored, so nothing was staged", secretID))
	}
	if err != nil {
		return stageError(secretID, s, err)
	}
	versionID := res.VersionID
	out := stagedJSON{SecretID: secretID, VersionID: versionID, Validated: f.validate, Replaced: before, Notes: res.Notes}
	if before != "" && pending != "" && sameKey(ctx, store, secretID, before, pending) {
		out.ReplacedInRotation = pending
	}
	if after := stagedVersionOf(ctx, store, secretID); after != "" && after != versionID {
		out.SupersededBy = after
	}
	return a.printStaged(out, f.output)
}

// pendingVersionOf returns the version of the rotation in progress, or ""
// if none is in progress or the secret cannot be read.
func pendingVersionOf(ctx context.Context, store keystore.Store, secretID string) string {
	d, err := store.Describe(ctx, secretID)
	if err != nil {
		return ""
	}
	return d.PendingVersion()
}

// sameKey reports whether versions a and b of a secret hold the same key.
// It reports false if either cannot be read.
func sameKey(ctx context.Context, store keystore.Store, secretID, a, b string) bool {
	va, errA := store.Get(ctx, secretID, keystore.ByVersion(a))
	vb, errB := store.Get(ctx, secretID, keystore.ByVersion(b))
	if errA != nil || errB != nil {
		return false
	}
	keyA, errA := keystore.ParseValue(va.Value)
	keyB, errB := keystore.ParseValue(vb.Value)
	return errA == nil && errB == nil && keyA.APIKey.Equal(keyB.APIKey)
}

// stagedVersionOf returns the version that has KEYTURN_STAGED, or "" if
// none does or the secret cannot be read.
func stagedVersionOf(ctx context.Context, store keystore.Store, secretID string) string {
	d, err := store.Describe(ctx, secretID)
	if err != nil {
		return ""
	}
	return d.VersionWithStage(keystore.StageStaged)
}

// stageError gives an engine error its exit code and a hint. The engine's
// message already states that nothing was staged.
func stageError(secretID string, s settings, err error) error {
	switch {
	case errors.Is(err, provider.ErrInvalidKey):
		return cli.WithCode(exitRejected, err).WithHint("the key cannot be sent as it is: check the file")
	case errors.Is(err, rotation.ErrRejected):
		return cli.WithCode(exitRejected, err).WithHint("check that it is the right key for this secret")
	case errors.Is(err, keystore.ErrUnavailable):
		return cli.WithCode(exitTransient, err).WithHint("the store could not be reached; retry later with the same command")
	case errors.Is(err, rotation.ErrTransient):
		return cli.WithCode(exitTransient, err).WithHint("try again later, or stage without --validate")
	case errors.Is(err, keystore.ErrNotFound):
		return notFoundError("stage", secretID, s)
	case errors.Is(err, rotation.ErrConfig) && strings.Contains(err.Error(), keystore.TagBaseURL):
		t := rotateTarget{secretID: secretID, onAWS: s.store.Kind == storeurl.AWS}
		return cli.WithCode(exitError, err).
			WithHint("the secret's %s is not the provider's API root: %s, then stage again", keystore.TagBaseURL, settingsChange(t, "--base-url URL"))
	}
	return err
}

type stagedJSON struct {
	SecretID  string `json:"secret_id"`
	VersionID string `json:"version_id"`
	Validated bool   `json:"validated"`
	// Replaced is the version that held KEYTURN_STAGED before, if any.
	Replaced string `json:"replaced_version_id,omitempty"`
	// ReplacedInRotation is the version of the rotation in progress when
	// its key came from the replaced version: that rotation, when resumed,
	// still uses the replaced key.
	ReplacedInRotation string `json:"replaced_key_in_rotation,omitempty"`
	// SupersededBy is a version that another stage wrote after this one,
	// which now has KEYTURN_STAGED.
	SupersededBy string `json:"superseded_by,omitempty"`
	// Notes describe how the staged value differs from the input: settings
	// replaced by the secret's tags, dropped retire or last_failure fields.
	Notes []string `json:"notes,omitempty"`
}

func (a *app) printStaged(out stagedJSON, format outputFlag) error {
	if format == outputJSON {
		return a.writeJSON(out)
	}
	how := "not validated"
	if out.Validated {
		how = "validated with the provider"
	}
	for _, note := range out.Notes {
		fmt.Fprintf(a.stderr, "rotator: note: %s\n", note)
	}
	fmt.Fprintf(a.stdout, "staged %s version %s (%s)\n", out.SecretID, out.VersionID, how)
	switch {
	case out.ReplacedInRotation != "":
		fmt.Fprintf(a.stdout, "replaced the staged version %s; the rotation in progress (version %s) still uses the previous staged key\n",
			out.Replaced, out.ReplacedInRotation)
	case out.Replaced != "":
		fmt.Fprintf(a.stdout, "replaced the staged version %s, which no rotation will use now\n", out.Replaced)
	}
	if out.SupersededBy != "" {
		fmt.Fprintf(a.stdout, "another stage has since replaced it: version %s is staged now\n", out.SupersededBy)
		return nil
	}
	fmt.Fprintf(a.stdout, "next: 'rotator rotate-now %s' proves and promotes it, or the next scheduled rotation does\n", out.SecretID)
	return nil
}

// readValue reads the next key from path ("-" is stdin) and returns it as a
// value. Errors describe the input's shape, never its content.
func (a *app) readValue(path string) (keystore.Value, error) {
	data, name, err := a.readInput(path)
	if err != nil {
		return keystore.Value{}, err
	}
	if err := checkEncoding(name, data); err != nil {
		return keystore.Value{}, err
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case bytes.HasPrefix(trimmed, []byte("{")):
		return parseValueObject(name, data)
	case bytes.HasPrefix(trimmed, []byte("[")):
		return keystore.Value{}, inputError(name, "a JSON array is not a key")
	case bytes.HasPrefix(trimmed, []byte(`"`)):
		return keystore.Value{}, inputError(name, "a quoted JSON string is not a key")
	}
	key, err := parseBareKey(name, data)
	if err != nil {
		return keystore.Value{}, err
	}
	return keystore.Value{APIKey: key}, nil
}

// inputError reports a malformed key input. The advice after the first
// ": " of problem, if any, becomes the hint; otherwise the hint gives the
// forms the input may take.
func inputError(name, problem string) error {
	what, advice, ok := strings.Cut(problem, ": ")
	if !ok {
		advice = `give the bare key on one line, or a value object {"api_key": "…"}`
	}
	return cli.WithCode(exitError, fmt.Errorf("stage: %s: %s", name, what)).WithHint("%s", advice)
}

// checkEncoding rejects a byte order mark, which editors on some systems
// add and which no provider accepts as part of a key.
func checkEncoding(name string, data []byte) error {
	switch {
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		return cli.WithCode(exitError, fmt.Errorf("stage: %s starts with a UTF-8 byte order mark", name)).
			WithHint("save the file without a byte order mark (in most editors: encoding UTF-8, not UTF-8 with BOM)")
	case bytes.HasPrefix(data, []byte("\xff\xfe")), bytes.HasPrefix(data, []byte("\xfe\xff")):
		return cli.WithCode(exitError, fmt.Errorf("stage: %s is UTF-16 text", name)).
			WithHint("save the file as plain ASCII or UTF-8 without a byte order mark")
	}
	return nil
}

// parseValueObject reads a value JSON object and checks its key.
func parseValueObject(name string, data []byte) (keystore.Value, error) {
	v, err := keystore.ParseValue(keystore.NewSecret(string(data)))
	if err != nil {
		return keystore.Value{}, cli.WithCode(exitError, fmt.Errorf("stage: %s: %w", name, err))
	}
	if problem := keyProblem(v.APIKey.Reveal()); problem != "" {
		return keystore.Value{}, inputError(name, "the api_key "+problem)
	}
	return v, nil
}

func (a *app) readInput(path string) ([]byte, string, error) {
	name := path
	var r io.Reader
	if path == "-" {
		name = "standard input"
		r = a.stdin
		if cli.IsTerminal(a.stdin) {
			fmt.Fprintln(a.stderr, "rotator: reading the key from standard input; end with Ctrl-D")
		}
	} else {
		fh, err := openKeyFile(path)
		if err != nil {
			return nil, "", err
		}
		defer fh.Close()
		r = fh
	}
	data, err := io.ReadAll(io.LimitReader(r, maxValueBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("stage: cannot read %s: %w", name, err)
	}
	if len(data) > maxValueBytes {
		return nil, "", fmt.Errorf("stage: %s is longer than %d bytes, the limit of a secret value", name, maxValueBytes)
	}
	return data, name, nil
}

// openKeyFile opens the key file at path, with an error that says what is
// wrong with the path: missing, unreadable, or a directory.
func openKeyFile(path string) (*os.File, error) {
	fh, err := os.Open(path)
	if err == nil {
		if fi, sErr := fh.Stat(); sErr == nil && fi.IsDir() {
			fh.Close()
			err = errors.New("it is a directory")
		}
	}
	switch {
	case err == nil:
		return fh, nil
	case errors.Is(err, fs.ErrNotExist):
		err = errors.New("it does not exist")
	case errors.Is(err, fs.ErrPermission):
		err = errors.New("permission denied")
	default:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
	}
	return nil, cli.WithCode(exitError, fmt.Errorf("stage: cannot read key file %s: %w", path, err)).
		WithHint("pass --file PATH of a readable file, or - for standard input")
}

// parseBareKey accepts one key on one line, followed by any number of
// empty or whitespace-only lines, as editors leave them.
func parseBareKey(name string, data []byte) (keystore.Secret, error) {
	lines := strings.Split(string(data), "\n")
	for len(lines) > 1 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	s := strings.TrimSuffix(strings.Join(lines, "\n"), "\r")
	switch {
	case strings.TrimSpace(s) == "":
		return keystore.Secret{}, inputError(name, "is empty")
	case strings.ContainsAny(s, "\r\n"):
		lines := strings.Count(s, "\n") + 1
		return keystore.Secret{}, inputError(name, fmt.Sprintf("has %d lines: put only the key in the file, on one line", lines))
	}
	if problem := keyProblem(s); problem != "" {
		return keystore.Secret{}, inputError(name, "the key "+problem)
	}
	return keystore.NewSecret(s), nil
}

// minKeyLen is the length below which a key is taken for a truncated or
// wrong one. Every provider keyturn supports issues keys of 30 characters
// or more; 8 leaves room for relays with shorter keys.
const minKeyLen = 8

// envAssignment matches a .env line such as OPENAI_API_KEY=sk-...: a name,
// then = and a value. Base64 padding (abc==) does not match, because the
// value would start with =.
var envAssignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=[^=]`)

// keyProblem returns why key can never be a provider key, or "". Provider
// keys are printable ASCII without spaces or quotes. The problem names a
// byte offset or a length, never the key's characters, because the key is
// secret.
func keyProblem(key string) string {
	if !utf8.ValidString(key) {
		return "is not valid UTF-8 text: check that the file holds the key itself, not a binary file"
	}
	if problem := keyShapeProblem(key); problem != "" {
		return problem
	}
	for i, r := range key {
		switch {
		case r == 0:
			return fmt.Sprintf("contains a NUL byte at byte %d", i)
		case r == ' ' || r == '\t':
			return "contains spaces or tabs, which no provider key has"
		case r < 0x20 || r == 0x7f:
			return fmt.Sprintf("contains a control character at byte %d", i)
		case r > unicode.MaxASCII:
			return fmt.Sprintf("contains a non-ASCII character at byte %d, which no provider key has: retype or copy the key again (an editor may have replaced a character, such as - with a dash)", i)
		}
	}
	return ""
}

// keyShapeProblem finds the usual ways a copied key goes wrong: a whole
// .env line, quotes kept from a config file, and a cut-off key.
func keyShapeProblem(key string) string {
	switch {
	case key == "":
		return "" // the callers report a missing key in their own words
	case envAssignment.MatchString(key):
		return "looks like a NAME=VALUE line from a .env file: put only the value after = in the file"
	case strings.HasPrefix(key, "export ") && strings.Contains(key, "="):
		return "looks like a shell export line: put only the value after = in the file"
	case strings.ContainsAny(key[:1], `"'`+"`"):
		return "starts with a quote: remove the quotes around the key"
	case strings.ContainsAny(key[len(key)-1:], `"'`+"`"):
		return "ends with a quote: remove the quotes around the key"
	case len(key) < minKeyLen:
		return fmt.Sprintf("is %d characters long, shorter than any provider key (at least %d): check that the file contains the whole key", len(key), minKeyLen)
	}
	return ""
}
