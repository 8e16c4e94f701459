#include <ckpt.h>
#include <stdio.h>
int main(int argc, char **argv) {
    if (argc != 2) return 2;
    ckpt_state *s; ckpt_state_create(&s);
    int64_t shape[1] = {4}; float x[4] = {1, 2, 3, 4}, y[4] = {0};
    ckpt_state_add_replicated(s, "x", CKPT_F32, 1, shape, x);
    if (ckpt_save(MPI_COMM_NULL, argv[1], s, NULL)) { printf("%s\n", ckpt_errmsg()); return 1; }
    ckpt_state_free(s); ckpt_state_create(&s);
    ckpt_state_add_replicated(s, "x", CKPT_F32, 1, shape, y);
    int rc = ckpt_load(MPI_COMM_NULL, argv[1], s, NULL);
    printf("find_package(ckpt) consumer: %s, y = %g %g %g %g\n", ckpt_status_name(rc), y[0], y[1], y[2], y[3]);
    ckpt_state_free(s); return rc != 0;
}
