package main

import (
	"go.yaml.in/yaml/v3"

	"github.com/keyturn/keyturn/internal/yamlcfg"
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
		return fileConfig{}, yamlcfg.FileError(path, yamlcfg.SyntaxError(err))
	}
	if len(doc.Content) == 0 {
		return fileConfig{}, nil // an empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fileConfig{}, yamlcfg.FileError(path, yamlcfg.AtLine(root,
			"expected keys such as 'store: file:///var/lib/keyturn/store', found %s", yamlcfg.Kind(root)))
	}
	var cfg fileConfig
	err := yamlcfg.EachKey(root, "the config file", "'store: file:///var/lib/keyturn/store'", cfg.set)
	if err != nil {
		return fileConfig{}, yamlcfg.FileError(path, err)
	}
	return cfg, nil
}

// set stores the value of one top-level key.
func (cfg *fileConfig) set(key, value *yaml.Node) error {
	var err error
	switch key.Value {
	case "store":
		cfg.Store, err = yamlcfg.Text(key.Value, value, "a URL or a path")
	case "identity":
		cfg.Identity, err = yamlcfg.Text(key.Value, value, "a URL or a path")
	case "relay_hosts":
		cfg.RelayHosts, err = yamlcfg.HostList(key.Value, value)
	default:
		err = yamlcfg.AtLine(key, "unknown key %s: the keys are %s", key.Value, configKeys)
	}
	return err
}
