package orchestration

import "encoding/json"

// decodeFast decodes payload into *e. For now it is encoding/json.
func decodeFast[T any](payload []byte, e *T) error {
	return json.Unmarshal(payload, e)
}
