// libFuzzer target: parse_model_config (fuzz_parsers.h) on arbitrary bytes.
#include "fuzz_main.h"
#include "fuzz_parsers.h"

CAPTION_FUZZ_TARGET(caption::fuzz::parse_model_config, ".json")
