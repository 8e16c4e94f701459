/* args.h -- command-line parsing shared by the writing tools: "--name VALUE" / "--name=VALUE"
 * options, and the one-line usage error every tool prints before exiting with status 2. */
#ifndef CKPT_TOOLS_ARGS_H
#define CKPT_TOOLS_ARGS_H

/* Exit status of a usage error, the same in every tool. */
#define ARGS_EXIT_USAGE 2

/* When argv[*i] is option `name` ("--name VALUE" or "--name=VALUE"): sets *matched and returns
 * the value (advancing *i past a separate value), or NULL when the value is missing. Otherwise
 * *matched = 0 and NULL. */
const char *args_value(int argc, char **argv, int *i, const char *name, int *matched);

/* Prints "PROG: <message> (see PROG --help)" on stderr; returns ARGS_EXIT_USAGE. */
int args_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole decimal int in [lo, hi]; 0 when malformed or out of range. */
int args_int(const char *s, long lo, long hi, long *out);

#endif
