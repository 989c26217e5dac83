package keystore

// Unexported functions that the external tests call.
var (
	EncodeFileName = encodeFileName
	DecodeFileName = decodeFileName
)
