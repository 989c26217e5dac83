package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// fileConfig is the YAML config file.
type fileConfig struct {
	Store      string
	Identity   string
	RelayHosts []string
}

const configKeys = "store, identity and relay_hosts"

// decodeConfig reads the config file at path. It walks the YAML node tree
// rather than decoding into a struct, so that every error names the file,
// the line and the key in plain words. The errors are an unknown key, a key
// given twice, and a value of the wrong kind.
func decodeConfig(path string, data []byte) (fileConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fileConfig{}, yamlSyntaxError(path, err)
	}
	if len(doc.Content) == 0 {
		return fileConfig{}, nil // an empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fileConfig{}, fmt.Errorf("config file %s line %d: expected keys such as 'store: file:///var/lib/keyturn/store', found %s",
			path, root.Line, nodeKind(root))
	}
	var cfg fileConfig
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, value := root.Content[i], root.Content[i+1]
		if line, ok := seen[key.Value]; ok {
			return fileConfig{}, fmt.Errorf("config file %s line %d: key %s is already set on line %d: keep one", path, key.Line, key.Value, line)
		}
		seen[key.Value] = key.Line
		if err := cfg.set(key, value); err != nil {
			return fileConfig{}, fmt.Errorf("config file %s line %d: %w", path, key.Line, err)
		}
	}
	return cfg, nil
}

// set stores the value of one top-level key.
func (cfg *fileConfig) set(key, value *yaml.Node) error {
	var err error
	switch key.Value {
	case "store":
		cfg.Store, err = stringValue(key.Value, value)
	case "identity":
		cfg.Identity, err = stringValue(key.Value, value)
	case "relay_hosts":
		cfg.RelayHosts, err = listValue(key.Value, value)
	default:
		err = fmt.Errorf("unknown key %s: the keys are %s", key.Value, configKeys)
	}
	return err
}

// stringValue reads a text value; an empty value leaves the setting unset.
func stringValue(key string, n *yaml.Node) (string, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return "", nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		return n.Value, nil
	}
	return "", fmt.Errorf("%s must be text, such as a URL or a path, not %s", key, nodeKind(n))
}

// listValue reads a list of text values, or one text value that holds a
// comma-separated list as KEYTURN_RELAY_HOSTS does.
func listValue(key string, n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		s, err := stringValue(key, n)
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' }), err
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s must be a list of host names, such as [relay.example.com], not %s", key, nodeKind(n))
	}
	var out []string
	for _, item := range n.Content {
		if item.Kind != yaml.ScalarNode || item.Tag != "!!str" {
			return nil, fmt.Errorf("line %d: each entry of %s must be a host name, not %s", item.Line, key, nodeKind(item))
		}
		out = append(out, item.Value)
	}
	return out, nil
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
	}
	return "a value"
}

var yamlLinePrefix = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlSyntaxError words a YAML syntax error with the file and line first.
func yamlSyntaxError(path string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	if m := yamlLinePrefix.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("config file %s line %s: invalid YAML: %s", path, m[1], msg[len(m[0]):])
	}
	return fmt.Errorf("config file %s: invalid YAML: %s", path, strings.TrimPrefix(msg, "yaml: "))
}
