/* fault.h -- fault injection for tests (SQLite style): CKPT_FAULT in the environment names the
 * point that fails, e.g. CKPT_FAULT=io_write makes this process's data writes fail with an I/O
 * error, CKPT_FAULT=commit fails rank 0 just before the commit. */
#ifndef CKPT_FAULT_H
#define CKPT_FAULT_H

/* 1 when the environment asks `point` to fail. */
int ckpt_fault(const char *point);

#endif
