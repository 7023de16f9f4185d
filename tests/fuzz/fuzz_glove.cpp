// libFuzzer target: parse_glove (fuzz_parsers.h) on arbitrary bytes.
#include "fuzz_main.h"
#include "fuzz_parsers.h"

CAPTION_FUZZ_TARGET(caption::fuzz::parse_glove, ".txt")
