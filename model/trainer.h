#pragma once
// Teacher-forced training of the decoder from precomputed image features, with a checkpoint
// (parameters, Adam moments, step and epoch in one atomically written file) after every
// epoch, so that --resume continues exactly: batches depend only on (seed, epoch) and
// dropout masks only on (seed, step).
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/device.h"

namespace caption {

struct TrainOptions {
  std::string captions, train_list, val_list, glove, out;
  std::vector<std::string> features;  // one file, or the shards of one set
  std::string encoder_dir;  // a model dir whose encoder made `features`: copied into `out`
  int epochs = 10;
  int batch = 64;
  int min_count = 10;
  int max_len = 40;
  float lr = 1e-3f;
  float dropout = 0.3f;
  float clip = 0.f;  // global gradient-norm clip; 0 = off
  uint64_t seed = 1;
  Device device = Device::CPU;
  size_t memory_limit = 0;  // bytes the device memory pool may hold; 0 = all there is
  bool cuda_graphs = false;  // Decoder::use_graphs
  bool resume = false;
};

struct StepProgress {
  int epoch, epochs;
  size_t step, steps;  // within the epoch
  double loss;         // running mean over the epoch so far
  double tokens_per_s;
  double eta_s;  // rest of this epoch
};

struct EpochMetrics {
  int epoch;
  double train_loss, val_loss;
  double tokens_per_s, seconds;
  int64_t train_tokens;
  bool best;  // lowest validation loss so far: the weights in the model files
};

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void message(const std::string& line) = 0;
  virtual void step(const StepProgress& p) = 0;
  virtual void epoch(const EpochMetrics& m) = 0;  // after the checkpoint is on disk
};

// Writes into opt.out: the model files (config.json, vocab.txt, decoder.safetensors: the
// weights of the epoch with the lowest validation loss), checkpoint.safetensors (latest
// epoch) and metrics.jsonl. Throws InputError on bad input, std::runtime_error when the loss
// goes non-finite (the last checkpoint stays as it was).
void train(const TrainOptions& opt, TrainObserver& observer);

}  // namespace caption
