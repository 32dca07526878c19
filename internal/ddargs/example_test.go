package ddargs_test

import (
	"errors"
	"fmt"

	"github.com/blkpipe/blkpipe/internal/ddargs"
)

func ExampleParse() {
	o, err := ddargs.Parse([]string{"if=/dev/vg0/snap", "bs=4M", "iflag=direct", "skip=1GiB", "count=100MB"})
	if err != nil {
		panic(err)
	}
	fmt.Println(o.If, o.IBS, o.BS, o.IFlag.Direct)
	fmt.Println(o.SkipSplit())
	fmt.Println(o.CountSplit())

	_, err = ddargs.Parse([]string{"bs=4M", "conv=excl,nocreat"})
	fmt.Println(err, errors.Is(err, ddargs.ErrConflict))
	o, _ = ddargs.Parse([]string{"conv=ucase,swab", "bs=4"})
	fmt.Println(o.Text.Ucase, o.Text.Swab, o.Text.Active())
	_, err = ddargs.Parse([]string{"iflag=directory"})
	fmt.Println(err)
	// Output:
	// /dev/vg0/snap 4194304 4194304 true
	// 256 0
	// 23 3531008
	// cannot combine excl and nocreat true
	// true true true
	// input flag 'directory' is not supported by blkpipe
}
