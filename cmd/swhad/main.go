// Command swhad runs an swha node next to a routing or switch daemon.
//
// Until the node, failover and demo land, swhad reports its version and which
// parts of the system are built, so that the README's first command always runs.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at link time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("swhad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch cmd := fs.Arg(0); cmd {
	case "version":
		fmt.Fprintf(stdout, "swhad %s\n", version)
		return 0
	case "demo":
		return demo(stdout)
	case "", "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "swhad: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: swhad <command>

commands:
  demo      run two nodes in one process and show a failover
  version   print the version
`)
}
