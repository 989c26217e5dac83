package provider

import (
	"net/netip"
	"slices"
	"strings"
)

// metadataHostNames are names under which clouds serve instance metadata:
// Google Cloud's metadata.google.internal and metadata, and AWS's
// instance-data names. The addresses behind them are refused at dial time
// too, but a name is refused before any lookup.
var metadataHostNames = []string{
	"metadata.google.internal",
	"metadata",
	"instance-data",
	"instance-data.ec2.internal",
}

// isMetadataName reports whether host (normalized) is a cloud metadata
// host name.
func isMetadataName(host string) bool {
	return slices.Contains(metadataHostNames, host)
}

// isNumericForm reports whether host is made of numbers only, other than
// the dotted-decimal IPv4 address that netip reads: 2852039166,
// 0xa9fea9fe, 0251.0376.0251.0376 or 10.1. Resolvers that follow
// inet_aton read such hosts as IPv4 addresses (the first three are
// 169.254.169.254, and 10.1 is 10.0.0.1), while keyturn would judge them
// as names.
func isNumericForm(host string) bool {
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if !isNumberLabel(label) {
			return false
		}
	}
	return true
}

// isNumberLabel reports whether s is a decimal, octal or 0x hexadecimal
// number, as inet_aton reads each part of an address.
func isNumberLabel(s string) bool {
	digits := "0123456789"
	if rest, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		s, digits = rest, "0123456789abcdef"
		if s == "" {
			return true // inet_aton reads a bare 0x as 0
		}
	}
	return s != "" && strings.Trim(s, digits) == ""
}

// article returns word with the indefinite article that goes before it.
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}
