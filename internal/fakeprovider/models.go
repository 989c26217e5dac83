package fakeprovider

import (
	"strings"
	"unicode"
)

// defaultModels mixes the model families of the four providers, retired
// ones included, as Gemini's list includes them. There are 60, so that
// Anthropic's default page of 20 and Gemini's of 50 both need more pages.
var defaultModels = []string{
	"gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
	"gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18",
	"gpt-4-turbo", "gpt-4", "gpt-3.5-turbo", "o1", "o1-mini", "o3", "o3-mini", "o4-mini",
	"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
	"omni-moderation-latest",

	"claude-opus-4-1-20250805", "claude-opus-4-20250514", "claude-sonnet-4-5-20250929",
	"claude-sonnet-4-20250514", "claude-haiku-4-5-20251001", "claude-3-7-sonnet-20250219",
	"claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022", "claude-3-5-sonnet-20240620",
	"claude-3-opus-20240229", "claude-3-sonnet-20240229", "claude-3-haiku-20240307",
	"claude-2.1", "claude-2.0",

	"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
	"gemini-2.5-flash-preview-05-20", "gemini-2.5-pro-preview-06-05",
	"gemini-2.0-flash", "gemini-2.0-flash-001", "gemini-2.0-flash-lite",
	"gemini-2.0-flash-lite-001", "gemini-2.0-flash-exp",
	"gemini-1.5-pro", "gemini-1.5-pro-002", "gemini-1.5-flash", "gemini-1.5-flash-002",
	"gemini-1.5-flash-8b", "gemini-1.0-pro-vision-latest", "gemini-pro-vision",
	"gemma-3-27b-it", "gemma-3-12b-it", "gemma-3-4b-it", "gemma-3-1b-it",
	"text-embedding-004", "embedding-001", "gemini-embedding-001",
}

// DefaultModels returns the model ids a Provider serves when Options.Models
// is nil.
func DefaultModels() []string { return append([]string(nil), defaultModels...) }

// displayName turns a model id into a display name:
// "claude-3-5-sonnet-20241022" becomes "Claude 3.5 Sonnet".
func displayName(id string) string {
	parts := strings.Split(id, "-")
	if n := len(parts); n > 1 && len(parts[n-1]) == 8 && isDigits(parts[n-1]) {
		parts = parts[:n-1]
	}
	var words []string
	for i, part := range parts {
		if i > 0 && isDigits(part) && isDigits(parts[i-1]) {
			words[len(words)-1] += "." + part
			continue
		}
		words = append(words, titleWord(part))
	}
	return strings.Join(words, " ")
}

func titleWord(w string) string {
	if w == "gpt" {
		return "GPT"
	}
	r := []rune(w)
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
