package ddargs

// Help documents the dd operands Parse accepts, for the tools' --help.
const Help = `Operands (as GNU dd):
  bs=BYTES        read and write up to BYTES at a time (default: 512);
                  overrides ibs and obs, and each read is written as is
  ibs=BYTES       read up to BYTES at a time (default: 512)
  obs=BYTES       write BYTES at a time (default: 512)
  count=N         copy only N input blocks
  skip=N, iseek=N skip N ibs-sized input blocks
  seek=N, oseek=N skip N obs-sized output blocks
  if=FILE         read from FILE instead of standard input
  of=FILE         write to FILE instead of standard output
  status=LEVEL    none: no report; noxfer: no final transfer statistics;
                  progress: periodic transfer statistics
  conv=CONVS      comma-separated: excl, nocreat, notrunc, noerror, sync,
                  sparse, fdatasync, fsync
  iflag=FLAGS     comma-separated: append, direct, dsync, sync, fullblock,
                  nocache, noatime, noctty, nofollow, nonblock, count_bytes,
                  skip_bytes
  oflag=FLAGS     comma-separated: append, direct, dsync, sync, nocache,
                  noatime, noctty, nofollow, nonblock, seek_bytes

N and BYTES may have a multiplicative suffix: c=1, w=2, b=512, kB=1000,
K=1024, MB=1000*1000, M=1024*1024, and so on for G, T, P, E, Z, Y; KiB=K,
MiB=M, and so on; or be a product of two, as 2x512. A "B" in count=, skip=
or seek= counts bytes, as count_bytes, skip_bytes and seek_bytes do.
Not supported: conv=ascii, ebcdic, ibm, block, unblock, lcase, ucase, swab,
cbs=, and the directory flag.
`
