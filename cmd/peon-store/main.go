// Command peon-store is the operator's command line for a peon event
// store. Its logic is in internal/cli; run `peon-store --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/peonhq/peon/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
