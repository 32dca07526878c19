package manpage

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blkpipe/blkpipe/internal/testenv/testutil"
)

var update = flag.Bool("update", false, "rewrite man/*.1 from the tools' current --help")

func TestMain(m *testing.M) { testutil.Main(m) }

// pages are the man pages in man/, one per tool and script.
var pages = []Page{
	{Name: "blkcat", Summary: "read a block device or image fast, as dd does, as raw data or a checked framed stream",
		SeeAlso: []string{"blkwrite(1)", "pvcat(1)", "snapctl(1)", "replicate.sh(1)", "dd(1)", "b3sum(1)"}},
	{Name: "blkwrite", Summary: "write a block device or file from a pipe, as dd does, guarded, verifying framed streams",
		SeeAlso: []string{"blkcat(1)", "pvcat(1)", "replicate.sh(1)", "dd(1)", "b3sum(1)"}},
	{Name: "pvcat", Summary: "copy a pipe and show its progress, with pv's flags and dd's SIGUSR1 report",
		SeeAlso: []string{"blkcat(1)", "blkwrite(1)", "pv(1)"}},
	{Name: "snapctl", Summary: "make one snapshot of a volume or file, run a command on it, and remove it",
		SeeAlso: []string{"blkcat(1)", "replicate.sh(1)", "lvcreate(8)", "btrfs(8)"}},
	{Name: "replicate.sh", Summary: "copy a live volume to a backup host, verified, from cron",
		SeeAlso: []string{"blkcat(1)", "blkwrite(1)", "pvcat(1)", "snapctl(1)", "ssh(1)", "flock(1)"}},
}

// help runs name --help as built from this tree (replicate.sh from
// scripts/) and returns what it prints.
func help(t *testing.T, name string) string {
	t.Helper()
	var cmd *exec.Cmd
	if strings.HasSuffix(name, ".sh") {
		testutil.NeedCmd(t, "bash")
		cmd = exec.Command("bash", filepath.Join(testutil.ModuleRoot(t), "scripts", name), "--help")
	} else {
		cmd = exec.Command(testutil.Tool(t, name), "--help")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --help: %v: %s", name, err, stderr.String())
	}
	if len(out) == 0 {
		t.Fatalf("%s --help printed nothing (stderr %q)", name, stderr.String())
	}
	return string(out)
}

// TestManPages renders each page from the tool's --help of this tree and
// compares it with man/NAME.1: a changed --help must come with its page
// (go test ./internal/manpage -run TestManPages -update). Each page must
// also render with groff -ww without a warning.
func TestManPages(t *testing.T) {
	dir := filepath.Join(testutil.ModuleRoot(t), "man")
	for _, p := range pages {
		t.Run(p.Name, func(t *testing.T) {
			p.Help = help(t, p.Name)
			got := Render(p)
			path := filepath.Join(dir, p.Name+".1")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/manpage -run TestManPages -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s is not %s --help as this tree prints it (first difference at byte %d); run go test ./internal/manpage -run TestManPages -update and commit it",
					path, p.Name, testutil.FirstDiff(got, want))
			}
			t.Run("groff", func(t *testing.T) {
				testutil.NeedCmd(t, "groff") // groff-base, in scripts/packages.txt
				cmd := exec.Command("groff", "-ww", "-man", "-Tutf8", path)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil || stderr.Len() > 0 {
					t.Fatalf("groff -ww -man %s: %v\n%s", path, err, stderr.String())
				}
				// The options survive the trip: "--" is rendered with
				// ASCII hyphens, to be pasted into a shell.
				if !bytes.Contains(out, []byte(" --")) {
					t.Errorf("groff's rendering of %s has no long option with ASCII hyphens", path)
				}
			})
		})
	}
}

// TestRender checks the rules that cut a help text into sections.
func TestRender(t *testing.T) {
	for _, tc := range []struct {
		name, help string
		want       []string // lines the page must hold, in order
	}{
		{"usage line then text", "Usage: x [-a] FILE\nDo 'it'.\n\n  -a  all\n\nExit codes: 0 ok,\n1 failure.\n", []string{
			".SH SYNOPSIS", ".nf", `x [\-a] FILE`, ".fi", ".SH DESCRIPTION", ".nf", `Do \(aqit\(aq.`, ".sp", `  \-a  all`, ".fi",
			".SH EXIT STATUS", ".nf", "0 ok,", "1 failure.", ".fi"}},
		{"usage block", "usage:\n  x create A\n  x remove B\n\n.dot and \\back\n\nExit status:\n  0  ok\n", []string{
			".SH SYNOPSIS", "x create A", "x remove B", ".SH DESCRIPTION", `\&.dot and \eback`, ".SH EXIT STATUS", "  0  ok"}},
		{"continued usage", "usage: x [-a]\n       [-b]\n\ntext\n", []string{".SH SYNOPSIS", "x [\\-a]", "[\\-b]", ".SH DESCRIPTION", "text"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := string(Render(Page{Name: "x", Summary: "does x", Help: tc.help}))
			at := 0
			for _, w := range tc.want {
				i := strings.Index(page[at:], "\n"+w+"\n")
				if i < 0 {
					t.Fatalf("no line %q after byte %d in\n%s", w, at, page)
				}
				at += i + 1
			}
			if strings.Contains(page, "EXIT STATUS") != strings.Contains(tc.help, "Exit") {
				t.Fatalf("EXIT STATUS section wrong in\n%s", page)
			}
		})
	}
}
