// A MongoDB-wire server for Rookery's tests: FerretDB v1.24 through its
// embeddable package, which also keeps telemetry off. Its backend is SQLite
// (-sqlite-dir) or PostgreSQL (-postgresql-url), the production-grade one. Built from
// this small module rather than FerretDB's own cmd/ferretdb, whose version
// check panics outside an official build.
//
// It prints "ready <mongodb URI>" once listening, and stops on SIGINT, SIGTERM
// or when its standard input closes (so it never outlives the test run).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:0", "TCP address to listen on (loopback)")
	dir := flag.String("sqlite-dir", "", "directory for the SQLite data files (the SQLite backend)")
	postgresURL := flag.String("postgresql-url", "", "PostgreSQL URL (the PostgreSQL backend)")
	flag.Parse()
	if (*dir == "") == (*postgresURL == "") {
		fmt.Fprintln(os.Stderr, "ferretdb: give one of -sqlite-dir and -postgresql-url")
		os.Exit(2)
	}
	config := ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listen}, Handler: "sqlite", SQLiteURL: "file:" + *dir + "/"}
	if *postgresURL != "" {
		config = ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listen}, Handler: "postgresql", PostgreSQLURL: *postgresURL}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	config.Logger = logger
	f, err := ferretdb.New(&config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	go func() {
		fmt.Println("ready", f.MongoDBURI())
	}()
	_ = f.Run(ctx)
}
