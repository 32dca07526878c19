package main

import (
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

// TestMain removes the tools the tests built once they have run.
func TestMain(m *testing.M) { testutil.Main(m) }
