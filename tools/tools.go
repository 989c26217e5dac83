//go:build tools

// Package tools pins the build and test tools keyturn uses, so that their
// versions live in this module's go.mod and stay out of the product's
// dependencies. Build one with, for example:
//
//	cd tools && go build -o DIR/aws-lambda-rie github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie
package tools

import (
	// The AWS Lambda Runtime Interface Emulator, which the end-to-end tests
	// run the rotator under.
	_ "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
)
