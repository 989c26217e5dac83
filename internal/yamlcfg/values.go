package yamlcfg

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Text reads a text value; an empty value leaves the setting unset.
// example, in messages, shows a valid value.
func Text(key string, n *yaml.Node, example string) (string, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return "", nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		return n.Value, nil
	}
	return "", AtLine(n, "%s must be text, such as %s, not %s", key, example, Kind(n))
}

// HostList reads a list of host names, or one text value that holds a
// comma-separated list as KEYTURN_RELAY_HOSTS does. It checks the kinds of
// the values only, not the host names.
func HostList(key string, n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		s, err := Text(key, n, "relay.example.com")
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' }), err
	}
	if n.Kind != yaml.SequenceNode {
		return nil, AtLine(n, "%s must be a list of host names, such as [relay.example.com], not %s", key, Kind(n))
	}
	var out []string
	for _, item := range n.Content {
		if item.Kind != yaml.ScalarNode || item.Tag != "!!str" {
			return nil, AtLine(item, "each entry of %s must be a host name, not %s", key, Kind(item))
		}
		out = append(out, item.Value)
	}
	return out, nil
}

// Bool reads true or false.
func Bool(key string, n *yaml.Node) (bool, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err == nil {
			return b, nil
		}
	}
	return false, AtLine(n, "%s must be true or false, not %s", key, Kind(n))
}

// Kind names what a YAML node holds in plain words, such as "a list" or
// "a number".
func Kind(n *yaml.Node) string {
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

// SyntaxError words an error of yaml.Unmarshal: a *LineError when the
// parser names a line, and "invalid YAML: ..." without the "yaml: "
// prefix of the parser's messages.
func SyntaxError(err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	if m := yamlLinePrefix.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &LineError{Line: line, Err: fmt.Errorf("invalid YAML: %s", msg[len(m[0]):])}
	}
	return fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}
