// Package migrations holds Cairn's PostgreSQL schema as golang-migrate files
// (NNNNNN_name.up.sql / NNNNNN_name.down.sql), embedded so every binary carries its schema.
// Apply them through package schema.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
