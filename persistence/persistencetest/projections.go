package persistencetest

import "testing"

func runProjections(t *testing.T, h Harness) {}
