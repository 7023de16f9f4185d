#pragma once
// Caption generation from image features: batched beam search over the decoder's step
// function (beam 1 is greedy decoding). Never emits <pad> or <start>; a caption ends at
// <end> or after max_len-1 words.
#include <string>
#include <vector>

#include "model/decoder.h"
#include "model/vocabulary.h"

namespace caption {

struct DecodeOptions {
  int beam = 1;  // at most 32: each row's 2*beam best tokens come from the device (kernels/beam_topk.h)
  float length_penalty = 0.f;  // finished score = sum log p / (words + 1)^length_penalty
  int max_len = 40;
  int batch = 64;  // images decoded together (rows = batch * beam)
  bool allow_unk = true;  // false: never emit <unk> either
};

// Token ids (without <start>/<end>) of the best caption for each of the `count` images in
// features [count, D].
std::vector<std::vector<int32_t>> generate(Decoder& decoder, const float* features, int count,
                                           const DecodeOptions& opt);

std::string caption_text(const Vocabulary& vocab, const std::vector<int32_t>& ids);

}  // namespace caption
