/* table.h -- column-aligned text tables: cells are collected row by row, widths computed from the
 * content, then printed with two spaces between columns. */
#ifndef CKPT_TOOLS_TABLE_H
#define CKPT_TOOLS_TABLE_H

#include <stdio.h>

typedef struct table {
    int ncols;
    int nrows, cap;
    char **cells;      /* nrows * ncols, NULL for a missing cell */
    unsigned right;    /* bit c set: column c is right-aligned */
    int oom;           /* an allocation failed: cells were dropped */
} table;

/* A table of `ncols` (<= 32) columns; `right` is the mask of right-aligned columns. */
void table_init(table *t, int ncols, unsigned right);
void table_free(table *t);
/* Starts a new row. */
void table_row(table *t);
/* Appends a printf-formatted cell to the current row (extra cells are ignored). */
void table_cell(table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints every row, each line starting with `indent`; trailing spaces are trimmed. */
void table_print(const table *t, FILE *out, const char *indent);

#endif
