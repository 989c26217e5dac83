package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

const stageUsage = `
Usage: rotator stage SECRET [--file PATH|-] [--key-id ID] [--validate]

Stores the next key of SECRET under KEYTURN_STAGED, for the next rotation to
prove and promote. The key is read from a file or standard input, never from
a flag: either the bare key on one line, or a full value JSON object such as
{"api_key": "sk-...", "key_id": "key_abc"}. Prints the staged version id,
never the key.

With --validate the key is checked against the provider first; a rejected
key is not staged and the exit code is 3.

Example:
  rotator stage prod/openai --file new-key.txt --validate
  pbpaste | rotator stage prod/openai
`

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
	store, closeStore, err := a.openStore(ctx, s, false)
	if err != nil {
		return err
	}
	defer closeStore()
	engine, err := newEngine(store, s, a.getenv, a.stderrLogger(slog.LevelWarn))
	if err != nil {
		return err
	}
	versionID, err := engine.Stage(ctx, secretID, value, f.validate)
	if err != nil {
		return stageError(secretID, s, err)
	}
	return a.printStaged(secretID, versionID, f)
}

// stageError gives an engine error its exit code and a hint. The engine's
// message already says that nothing was staged.
func stageError(secretID string, s settings, err error) error {
	switch {
	case errors.Is(err, provider.ErrInvalidKey):
		return withCode(exitRejected, err).withHint("the key cannot be sent as it is: check the file")
	case errors.Is(err, rotation.ErrRejected):
		return withCode(exitRejected, err).withHint("the provider rejected the key: check that it is the right key for this secret")
	case errors.Is(err, rotation.ErrTransient):
		return withCode(exitTransient, err).withHint("try again later, or stage without --validate")
	case errors.Is(err, keystore.ErrNotFound):
		return notFoundError("stage", secretID, s)
	}
	return err
}

type stagedJSON struct {
	SecretID  string `json:"secret_id"`
	VersionID string `json:"version_id"`
	Validated bool   `json:"validated"`
}

func (a *app) printStaged(secretID, versionID string, f *stageFlags) error {
	if f.output == outputJSON {
		return a.writeJSON(stagedJSON{SecretID: secretID, VersionID: versionID, Validated: f.validate})
	}
	how := "not validated"
	if f.validate {
		how = "validated with the provider"
	}
	fmt.Fprintf(a.stdout, "staged %s version %s (%s)\n", secretID, versionID, how)
	fmt.Fprintf(a.stdout, "next: 'rotator rotate-now %s' proves and promotes it, or the next scheduled rotation does\n", secretID)
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

// inputError reports a malformed key input with the forms it may take.
func inputError(name, problem string) error {
	return withCode(exitError, fmt.Errorf(`stage: %s: %s: give the bare key on one line, or a value object {"api_key": "…"}`, name, problem))
}

// checkEncoding rejects a byte order mark, which editors on some systems
// add and which no provider accepts as part of a key.
func checkEncoding(name string, data []byte) error {
	switch {
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		return withCode(exitError, fmt.Errorf("stage: %s starts with a UTF-8 byte order mark", name)).
			withHint("save the file without a byte order mark (in most editors: encoding UTF-8, not UTF-8 with BOM)")
	case bytes.HasPrefix(data, []byte("\xff\xfe")), bytes.HasPrefix(data, []byte("\xfe\xff")):
		return withCode(exitError, fmt.Errorf("stage: %s is UTF-16 text", name)).
			withHint("save the file as plain ASCII or UTF-8 without a byte order mark")
	}
	return nil
}

// parseValueObject reads a value JSON object and checks its key.
func parseValueObject(name string, data []byte) (keystore.Value, error) {
	v, err := keystore.ParseValue(keystore.NewSecret(string(data)))
	if err != nil {
		return keystore.Value{}, withCode(exitError, fmt.Errorf("stage: %s: %w", name, err))
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
		if isTerminal(a.stdin) {
			fmt.Fprintln(a.stderr, "rotator: reading the key from standard input; end with Ctrl-D")
		}
	} else {
		fh, err := os.Open(path)
		if err != nil {
			return nil, "", withCode(exitError, fmt.Errorf("stage: %w", err)).withHint("pass --file PATH of a readable file, or - for standard input")
		}
		defer fh.Close()
		r = fh
	}
	data, err := io.ReadAll(io.LimitReader(r, maxValueBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("stage: read %s: %w", name, err)
	}
	if len(data) > maxValueBytes {
		return nil, "", fmt.Errorf("stage: %s is longer than %d bytes, the limit of a secret value", name, maxValueBytes)
	}
	return data, name, nil
}

// parseBareKey accepts one key on one line, with at most one trailing
// newline.
func parseBareKey(name string, data []byte) (keystore.Secret, error) {
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	switch {
	case strings.TrimSpace(s) == "":
		return keystore.Secret{}, inputError(name, "is empty: expected a key")
	case strings.ContainsAny(s, "\r\n"):
		lines := strings.Count(s, "\n") + 1
		return keystore.Secret{}, inputError(name, fmt.Sprintf("has %d lines: expected one key on one line", lines))
	}
	if problem := keyProblem(s); problem != "" {
		return keystore.Secret{}, inputError(name, "the key "+problem)
	}
	return keystore.NewSecret(s), nil
}

// keyProblem returns why key can never be a provider key, or "". Provider
// keys are printable ASCII without spaces. The problem names a byte
// offset, never the character, because the key is secret.
func keyProblem(key string) string {
	if !utf8.ValidString(key) {
		return "is not valid UTF-8 text: check that the file holds the key itself, not a binary file"
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

// isTerminal reports whether r is a terminal: a character device other than
// the null device, which is one too.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
