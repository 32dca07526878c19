package main

import (
	"io"
	"sync/atomic"

	"github.com/blkpipe/blkpipe/internal/ddargs"
	"github.com/blkpipe/blkpipe/internal/ddcopy"
	"github.com/blkpipe/blkpipe/internal/ddtool"
	"github.com/blkpipe/blkpipe/internal/progress"
	"github.com/blkpipe/blkpipe/internal/receive"
)

// summary is blkwrite --json's summary line and what it gathers on the
// way: the framed stream's kind and digest, and its bytes read.
type summary struct {
	ddtool.Summary
	result receive.Result
	read   atomic.Int64
}

// newSummary returns the --json summary of this run, or nil.
func newSummary(opt options, ops *ddargs.Operands) *summary {
	if !opt.json {
		return nil
	}
	s := &summary{Summary: ddtool.Summary{Tool: "blkwrite", Path: "raw", Source: ops.If, Target: ddtool.OutputName(ops)}}
	if s.Source == "" {
		s.Source = "standard input"
	}
	return s
}

// framed counts the stream bytes read from in and returns where Framed
// records what it applied; nil when s is nil.
func (s *summary) framed(in *ddcopy.Input) *receive.Result {
	if s == nil {
		return nil
	}
	var r io.Reader = in.F
	if in.R != nil {
		r = in.R
	}
	in.R = &progress.CountReader{R: r, N: &s.read}
	s.In = s.read.Load
	return &s.result
}

// end completes the line with what Framed recorded.
func (s *summary) end() *ddtool.Summary {
	if s.result.Path != "" {
		s.Path = s.result.Path
		s.DigestAlg, s.Digest = s.result.DigestAlg, s.result.Digest
		if s.Digest != "" {
			v := s.result.Verified
			s.Verified = &v
		}
	}
	return &s.Summary
}
