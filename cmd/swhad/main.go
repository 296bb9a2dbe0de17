// Command swhad runs an swha node next to a routing or switch daemon.
//
// "swhad demo" runs an active and a standby node in one process over an
// in-memory link, churns routes, kills the active and promotes the standby;
// "swhad run" (the daemon proper) is not built yet.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
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
		dfs := flag.NewFlagSet("swhad demo", flag.ContinueOnError)
		dfs.SetOutput(stderr)
		verbose := dfs.Bool("v", false, "debug logs on stderr")
		if err := dfs.Parse(fs.Args()[1:]); err != nil {
			return 2
		}
		o := defaultDemoOptions()
		if *verbose {
			o.logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		return demo(stdout, o)
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
  demo [-v] run two nodes in one process and show a failover (-v: debug logs)
  version   print the version
`)
}
