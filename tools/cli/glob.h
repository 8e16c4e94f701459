/* glob.h -- shell-style name patterns (fnmatch(3)) for selecting tensors. */
#ifndef CKPT_TOOLS_GLOB_H
#define CKPT_TOOLS_GLOB_H

/* 1 when `name` matches `pattern` ('*', '?', '[...]'; '*' also matches '/'), or pattern is NULL. */
int glob_match(const char *pattern, const char *name);

#endif
