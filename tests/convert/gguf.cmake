# GGUF (formats/src/gguf_*.c): writer, strict reader, codecs, byte tokens, checkpoint export
# (CMocka, with its ASan+UBSan twin); and the exported file read by an independent parser,
# @huggingface/gguf under Node (installed by scripts/setup.sh into tests/convert/node/).
ckptfmt_test(gguf SOURCES test_gguf.c)

# shard-convert --to gguf end to end on the convert.fixture checkpoints (and with the ASan+UBSan
# shard-convert where the suite builds one)
if(TARGET shard-convert AND TARGET shard-train AND TARGET tools_make_ckpt AND TARGET shard-merge)
  set(gguf_variants "|shard-convert")
  if(TARGET asan_shard-convert)
    list(APPEND gguf_variants "asan.|asan_shard-convert")
  endif()
  foreach(v ${gguf_variants})
    string(REPLACE "|" ";" parts "${v}")
    list(GET parts 0 p)
    list(GET parts 1 conv)
    ckpt_variant_env(env "${p}")
    foreach(t export errors)
      add_test(NAME ${p}convert.gguf_${t}
        COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/gguf_tests.sh ${t} $<TARGET_FILE:${conv}>
                ${convert_tmp}/convert-fixture ${convert_tmp}/${p}convert-gguf_${t} $<TARGET_FILE:tools_make_ckpt>
                $<TARGET_FILE_DIR:shard-merge>)
      set_tests_properties(${p}convert.gguf_${t} PROPERTIES FIXTURES_REQUIRED convert_fixture TIMEOUT 600
        ENVIRONMENT "${env};HDF5_PLUGIN_PATH=${CMAKE_BINARY_DIR}/hdf5-plugins")
    endforeach()
  endforeach()
endif()
