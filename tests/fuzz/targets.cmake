# The fuzz targets: one line each, read by both builds (tests/fuzz/CMakeLists.txt: replay of the
# corpus under the main compiler + ASan/UBSan; tests/fuzz/clang/: libFuzzer under clang).
#   ckpt_fuzz(<name> SOURCES <files relative to the repository root> [LIBCKPT] [PKGS <pkg-config modules>]
#             [INCLUDES <include directories relative to the repository root>])
# fuzz_<name>.c defines LLVMFuzzerTestOneInput; corpus/<name>/ holds its committed seeds and
# regressions/<name>/ every input that once crashed it (both replayed by fuzz.replay.<name>).
# LIBCKPT links a sanitized static build of libckpt (internal symbols visible).
ckpt_fuzz(zstd_chunk SOURCES tests/fuzz/fuzz_zstd_chunk.c LIBCKPT)
ckpt_fuzz(commit_marker SOURCES tests/fuzz/fuzz_commit_marker.c LIBCKPT)
ckpt_fuzz(lock_record SOURCES tests/fuzz/fuzz_lock_record.c LIBCKPT)
ckpt_fuzz(plan_file SOURCES tests/fuzz/fuzz_plan_file.c tools/cli/plan.c LIBCKPT)
ckpt_fuzz(safetensors SOURCES tests/fuzz/fuzz_safetensors.c formats/src/safetensors_read.c
  formats/src/safetensors_dtype.c formats/src/input_file.c formats/src/error.c LIBCKPT PKGS jansson INCLUDES formats/include formats/src)
ckpt_fuzz(gguf SOURCES tests/fuzz/fuzz_gguf.c formats/src/gguf_read.c formats/src/gguf_types.c
  formats/src/gguf_utf8.c formats/src/gguf_quant.c formats/src/input_file.c formats/src/error.c LIBCKPT PKGS jansson
  INCLUDES formats/include formats/src)
ckpt_fuzz(index SOURCES tests/fuzz/fuzz_index.c LIBCKPT)
