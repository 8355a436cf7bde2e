package persistencetest

import "testing"

func runSubscribe(t *testing.T, h Harness) {}
