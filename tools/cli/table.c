/* table.c -- see table.h. */
#include "table.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void table_init(table *t, int ncols, unsigned right)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols < 1 ? 1 : ncols > 32 ? 32 : ncols;
    t->right = right;
}

void table_free(table *t)
{
    for (long i = 0; i < (long)t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

void table_row(table *t)
{
    if (t->nrows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, (size_t)cap * (size_t)t->ncols * sizeof *c);
        if (!c) {
            t->oom = 1;
            return;
        }
        t->cells = c;
        t->cap = cap;
    }
    memset(t->cells + (size_t)t->nrows * (size_t)t->ncols, 0, (size_t)t->ncols * sizeof *t->cells);
    t->nrows++;
}

void table_cell(table *t, const char *fmt, ...)
{
    if (t->nrows == 0)
        return;
    char **row = t->cells + (size_t)(t->nrows - 1) * (size_t)t->ncols;
    int c = 0;
    while (c < t->ncols && row[c])
        c++;
    if (c == t->ncols)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        t->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    row[c] = s;
}

void table_print(const table *t, FILE *out, const char *indent)
{
    size_t w[32] = {0};
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
            size_t n = s ? strlen(s) : 0;
            if (n > w[c])
                w[c] = n;
        }
    int last = t->ncols - 1;
    while (last > 0 && w[last] == 0)
        last--;
    for (int r = 0; r < t->nrows; r++) {
        char **row = t->cells + (size_t)r * (size_t)t->ncols;
        /* the last non-empty cell of this row: nothing after it, so no trailing spaces */
        int end = last;
        while (end > 0 && !(row[end] && row[end][0]) && !(t->right & (1u << end)))
            end--;
        fputs(indent ? indent : "", out);
        for (int c = 0; c <= end; c++) {
            const char *s = row[c] ? row[c] : "";
            int pad = (int)(w[c] - strlen(s));
            if (c)
                fputs("  ", out);
            if (t->right & (1u << c))
                fprintf(out, "%*s%s", pad, "", s);
            else if (c == end)
                fputs(s, out);
            else
                fprintf(out, "%s%*s", s, pad, "");
        }
        fputc('\n', out);
    }
}
