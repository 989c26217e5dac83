package router

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// lineError is an error about one line of the config file.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

func atLine(n *yaml.Node, format string, args ...any) error {
	return &lineError{line: n.Line, err: fmt.Errorf(format, args...)}
}

// eachKey calls set for every key of the mapping n, in file order. It
// rejects a node that is not a mapping, and a key given twice.
func eachKey(n *yaml.Node, what, example string, set func(key, value *yaml.Node) error) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return atLine(n, "%s must be a set of keys, such as %s, not %s", what, example, nodeKind(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			return atLine(key, "a key of %s must be a name, not %s", what, nodeKind(key))
		}
		if line, ok := seen[key.Value]; ok {
			return atLine(key, "key %s is already set on line %d: keep one", key.Value, line)
		}
		seen[key.Value] = key.Line
		if err := set(key, value); err != nil {
			return err
		}
	}
	return nil
}

// textValue reads a text value; an empty value leaves the setting unset.
func textValue(key string, n *yaml.Node, example string) (string, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return "", nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		return n.Value, nil
	}
	return "", atLine(n, "%s must be text, such as %s, not %s", key, example, nodeKind(n))
}

// listValue reads a list of text values, or one text value that holds a
// comma-separated list as KEYTURN_RELAY_HOSTS does.
func listValue(key string, n *yaml.Node, example string) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		s, err := textValue(key, n, example)
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' }), err
	}
	if n.Kind != yaml.SequenceNode {
		return nil, atLine(n, "%s must be a list, such as [%s], not %s", key, example, nodeKind(n))
	}
	var out []string
	for _, item := range n.Content {
		if item.Kind != yaml.ScalarNode || item.Tag != "!!str" {
			return nil, atLine(item, "each entry of %s must be text, such as %s, not %s", key, example, nodeKind(item))
		}
		out = append(out, item.Value)
	}
	return out, nil
}

func boolValue(key string, n *yaml.Node) (bool, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err == nil {
			return b, nil
		}
	}
	return false, atLine(n, "%s must be true or false, not %s", key, nodeKind(n))
}

// nodeKind names what a YAML node holds in plain words.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a set of keys"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "true or false"
	case "!!timestamp":
		return "a date"
	case "!!null":
		return "nothing"
	case "!!str":
		return "text"
	}
	return "a value"
}

var yamlLinePrefix = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlSyntaxError words a YAML syntax error with the line first.
func yamlSyntaxError(err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	if m := yamlLinePrefix.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("line %s: invalid YAML: %s", m[1], msg[len(m[0]):])
	}
	return fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}
