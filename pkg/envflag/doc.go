// Package envflag binds command-line flags to CAIRN_* environment variables.
//
// Every setting of every Cairn binary is a flag with an environment-variable equivalent
// (--database-url and CAIRN_DATABASE_URL). Precedence: a flag given on the command line wins,
// then the environment, then the default. Help output lists each flag with its variable and
// default. A malformed environment value is an error naming the variable, never ignored.
package envflag
