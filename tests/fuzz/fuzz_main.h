#pragma once
// LLVMFuzzerTestOneInput for a path-based parser: the input is written to a per-process
// temporary file and parsed; InputError is the expected rejection, anything else escaping
// (another exception type, a sanitizer report, a crash) is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "runtime/error.h"

#define CAPTION_FUZZ_TARGET(PARSE, EXT)                                                   \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {               \
    static const std::string path =                                                       \
        "/tmp/caption-fuzz-" + std::to_string(getpid()) + (EXT);                          \
    FILE* f = std::fopen(path.c_str(), "wb");                                             \
    if (!f) return 0;                                                                     \
    std::fwrite(data, 1, size, f);                                                        \
    std::fclose(f);                                                                       \
    try {                                                                                 \
      PARSE(path);                                                                        \
    } catch (const caption::InputError&) {                                                \
    }                                                                                     \
    return 0;                                                                             \
  }
