// Package tests contains keyturn's end-to-end tests. They build the real
// binaries: the rotator with the lambda.norpc tag, and the AWS Lambda Runtime
// Interface Emulator from the tools module. They run the rotator as a Lambda
// function under the emulator and as the operator CLI, against the Secrets
// Manager test server and the stand-in provider, all on 127.0.0.1.
//
// The tests need a Unix system (they manage process groups) and the go
// command on PATH, which `go test` provides.
package tests
