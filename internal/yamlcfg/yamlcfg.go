// Package yamlcfg reads the YAML config files of keyturn's commands node
// by node rather than into a struct, so that every error names the line
// and the key in plain words instead of Go types and YAML tags.
package yamlcfg

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// LineError is an error about one line of a config file.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// AtLine returns an error, formatted as fmt.Errorf does, about the line
// of n.
func AtLine(n *yaml.Node, format string, args ...any) error {
	return &LineError{Line: n.Line, Err: fmt.Errorf(format, args...)}
}

// FileError names the config file at path in err: "config file PATH line
// N: ..." for a *LineError, else "config file PATH: ...".
func FileError(path string, err error) error {
	var le *LineError
	if errors.As(err, &le) {
		return fmt.Errorf("config file %s %w", path, err)
	}
	return fmt.Errorf("config file %s: %w", path, err)
}

// EachKey calls set for every key of the mapping n, in file order. It
// rejects a node that is not a mapping, and a key given twice; a null node
// has no keys. what names n in messages and example shows one of its keys.
func EachKey(n *yaml.Node, what, example string, set func(key, value *yaml.Node) error) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return AtLine(n, "%s must be a set of keys, such as %s, not %s", what, example, Kind(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			return AtLine(key, "a key of %s must be a name, not %s", what, Kind(key))
		}
		if line, ok := seen[key.Value]; ok {
			return AtLine(key, "key %s is already set on line %d: keep one", key.Value, line)
		}
		seen[key.Value] = key.Line
		if err := set(key, value); err != nil {
			return err
		}
	}
	return nil
}
