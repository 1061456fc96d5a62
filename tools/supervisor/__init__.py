"""Child processes of the dev stack: found in runfiles, logs prefixed, stopped gracefully."""
