// libFuzzer target: parse_safetensors (fuzz_parsers.h) on arbitrary bytes.
#include "fuzz_main.h"
#include "fuzz_parsers.h"

CAPTION_FUZZ_TARGET(caption::fuzz::parse_safetensors, ".safetensors")
