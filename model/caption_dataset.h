#pragma once
// Captions joined with their image features, encoded to token ids, and cut into batches.
#include <cstdint>
#include <string>
#include <vector>

#include "model/captions.h"
#include "model/decoder.h"
#include "model/features.h"
#include "model/vocabulary.h"

namespace caption {

struct CaptionDataset {
  std::vector<size_t> feature_row;             // per caption: row in the FeatureTable
  std::vector<std::vector<int32_t>> tokens;    // per caption: <start> w.. <end>
  size_t images = 0;                           // distinct images with at least one caption
  size_t missing_features = 0;                 // captions dropped: image absent from features
};

// Captions of `images` (all captions when empty) that have features, encoded with `vocab`.
CaptionDataset build_dataset(const std::vector<CaptionRecord>& records, const std::vector<std::string>& images,
                             const FeatureTable& features, const Vocabulary& vocab, int max_len);

// The captions at `indices`, padded with 0 to the longest one.
TokenBatch make_batch(const CaptionDataset& data, const FeatureTable& features, const size_t* indices, int count);

// A shuffled epoch, a function of (seed, epoch) only so that a resumed run sees the same
// batches. Captions are shuffled, sorted by length within windows of 50 batches, cut into
// batches of at most `batch`, and the batches shuffled: batches hold captions of similar
// length, so little work goes to padding, while the order stays random.
std::vector<std::vector<size_t>> epoch_batches(const CaptionDataset& data, int batch, uint64_t seed, int epoch);
// The summed token loss (no dropout) of every caption once, in batches of at most `batch`
// captions sorted by length: validation in train, and caption score.
LossSum evaluate(Decoder& dec, const CaptionDataset& data, const FeatureTable& features, int batch);

}  // namespace caption
